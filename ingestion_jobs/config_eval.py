"""A tiny evaluator of the constant parts of a JavaScript/TypeScript config file.

Used by ``site_config.py`` to read ``docusaurus.config.*`` without running it. It walks the
tree-sitter syntax tree and evaluates literals, ``const`` names, object spreads, template
strings, ``require.resolve('x')`` (-> ``'x'``), ``process.env.X`` (undefined: the production
build with no special environment), ``!``, ``&&``, ``||``, ``??``, ``===``/``!==``, ``+`` on
strings and ``?:``. Comments anywhere (``/** @type {...} */ ({...})``), parentheses, ``as``,
``satisfies`` and ``!`` (non-null) are seen through. Anything else evaluates to ``UNKNOWN``.

Budgets (issue 30: a chain of 30 ``const``s each naming the one before twice, 707 bytes, took
26 s): each ``const`` is evaluated once (its value is kept), one evaluator visits at most
``MAX_STEPS`` expression nodes, and a string (an array) it builds holds at most
``MAX_STRING_CHARS`` characters (items); past
either the value is ``UNKNOWN`` and ``exhausted`` says so (the config reader warns).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

__all__ = ["MAX_STEPS", "MAX_STRING_CHARS", "UNDEFINED", "UNKNOWN", "ConfigEvaluator"]

MAX_STEPS = 200_000  # a real docusaurus.config.js takes a few thousand
MAX_STRING_CHARS = 1_000_000


class _Undefined:
    """JavaScript's ``undefined``: known to be absent (unlike ``UNKNOWN``)."""

    def __repr__(self) -> str:
        return "undefined"


class _Unknown:
    """A value this evaluator cannot know without running the code."""

    def __repr__(self) -> str:
        return "<unknown>"


UNDEFINED: Any = _Undefined()
UNKNOWN: Any = _Unknown()
_TRANSPARENT = {
    "parenthesized_expression",
    "as_expression",
    "satisfies_expression",
    "non_null_expression",
}


@lru_cache(maxsize=2)
def _parser(typescript: bool) -> Parser:
    language = (
        tree_sitter_typescript.language_typescript()
        if typescript
        else tree_sitter_typescript.language_tsx()  # TSX: JavaScript plus JSX, a superset
    )
    return Parser(Language(language))


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value is not UNDEFINED


def _named(node: Node) -> list[Node]:
    """Named children without comments (tree-sitter keeps comments as named children)."""
    return [child for child in node.named_children if child.type != "comment"]


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


class ConfigEvaluator:
    """Evaluates constant expressions of a config file; unknown parts yield ``UNKNOWN``."""

    def __init__(self, source: bytes, *, typescript: bool) -> None:
        self.root = _parser(typescript).parse(source).root_node
        self.declarations: dict[str, Node] = {}
        self._resolving: set[str] = set()
        self._values: dict[str, Any] = {}
        self._steps_left = MAX_STEPS
        #: A budget ran out: some value was read as UNKNOWN for that reason alone.
        self.exhausted = False
        for node in self._walk(self.root):
            if node.type == "variable_declarator":
                name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
                if name is not None and value is not None and name.type == "identifier":
                    self.declarations.setdefault(_text(name), value)

    @staticmethod
    def _walk(node: Node) -> Iterator[Node]:
        stack = [node]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(current.named_children))

    def config_object(self) -> Node | None:
        """The object literal holding ``baseUrl`` (and ``url``): the site config."""
        best: Node | None = None
        for node in self._walk(self.root):
            if node.type != "object":
                continue
            keys = {_key(child) for child in node.named_children}
            if "baseUrl" in keys and "url" in keys:
                return node
            if best is None and "baseUrl" in keys:
                best = node
        return best

    def evaluate(self, node: Node | None) -> Any:
        if node is None:
            return UNKNOWN
        if self._steps_left <= 0:
            self.exhausted = True
            return UNKNOWN
        self._steps_left -= 1
        kind = node.type
        if kind in _TRANSPARENT:
            inner = _named(node)  # the expression comes first, before any type
            return self.evaluate(inner[0] if inner else None)
        if kind == "string":
            return _string_value(node)
        if kind == "template_string":
            return self._template(node)
        if kind == "number":
            try:
                return float(_text(node).replace("_", ""))
            except ValueError:
                return UNKNOWN
        if kind in {"true", "false"}:
            return kind == "true"
        if kind == "null":
            return None
        if kind == "undefined":
            return UNDEFINED
        if kind in {"identifier", "shorthand_property_identifier"}:
            return self._resolve(_text(node))
        if kind == "member_expression":
            # process.env.ANYTHING is undefined: we read the plain production config.
            return UNDEFINED if _text(node).startswith("process.env.") else UNKNOWN
        if kind == "call_expression":
            return self._call(node)
        if kind == "unary_expression":
            return self._unary(node)
        if kind == "binary_expression":
            return self._binary(node)
        if kind == "ternary_expression":
            condition = self.evaluate(node.child_by_field_name("condition"))
            if condition is UNKNOWN:
                return UNKNOWN
            branch = "consequence" if _truthy(condition) else "alternative"
            return self.evaluate(node.child_by_field_name(branch))
        if kind == "object":
            return self.object_value(node)
        if kind == "array":
            items: list[Any] = []
            for child in _named(node):
                if child.type == "spread_element":
                    spread = self.evaluate(_named(child)[0] if _named(child) else None)
                    items.extend(spread if isinstance(spread, list) else [UNKNOWN])
                else:
                    items.append(self.evaluate(child))
                if len(items) > MAX_STRING_CHARS:  # spreads of spreads double it each time
                    self.exhausted = True
                    return UNKNOWN
            return items
        return UNKNOWN

    def object_value(self, node: Node) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for child in _named(node):
            if child.type == "pair":
                key = _key(child)
                if key is not None:
                    result[key] = self.evaluate(child.child_by_field_name("value"))
            elif child.type == "shorthand_property_identifier":
                result[_text(child)] = self.evaluate(child)
            elif child.type == "spread_element":
                spread = self.evaluate(_named(child)[0] if _named(child) else None)
                if isinstance(spread, dict):
                    result.update(spread)
        return result

    def _template(self, node: Node) -> Any:
        parts: list[str] = []
        for child in node.named_children:
            if child.type == "template_substitution":
                value = self.evaluate(_named(child)[0] if _named(child) else None)
                if not isinstance(value, str):
                    return UNKNOWN
                parts.append(value)
            elif (piece := _literal_piece(child)) is not None:
                parts.append(piece)
        return self._bounded("".join(parts))

    def _bounded(self, text: str) -> Any:
        if len(text) > MAX_STRING_CHARS:
            self.exhausted = True
            return UNKNOWN
        return text

    def _call(self, node: Node) -> Any:
        callee = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if callee is not None and _text(callee) in {"require.resolve", "require"}:
            values = [self.evaluate(a) for a in _named(arguments)] if arguments else []
            if _text(callee) == "require.resolve" and values and isinstance(values[0], str):
                return values[0]
        return UNKNOWN

    def _resolve(self, name: str) -> Any:
        if name == "undefined":
            return UNDEFINED
        if name in self._values:
            return self._values[name]  # a `const` is evaluated once, however often it is named
        declaration = self.declarations.get(name)
        if declaration is None or name in self._resolving:
            return UNKNOWN
        self._resolving.add(name)
        try:
            value = self._values[name] = self.evaluate(declaration)
            return value
        finally:
            self._resolving.discard(name)

    def _unary(self, node: Node) -> Any:
        operator = node.child_by_field_name("operator")
        value = self.evaluate(node.child_by_field_name("argument"))
        if operator is None or value is UNKNOWN:
            return UNKNOWN
        if operator.type == "!":
            return not _truthy(value)
        return UNKNOWN

    def _binary(self, node: Node) -> Any:
        operator_node = node.child_by_field_name("operator")
        operator = operator_node.type if operator_node is not None else ""
        left = self.evaluate(node.child_by_field_name("left"))
        if operator in {"&&", "||", "??"}:
            if left is UNKNOWN:
                return UNKNOWN
            if operator == "&&":
                return self.evaluate(node.child_by_field_name("right")) if _truthy(left) else left
            if operator == "||":
                return left if _truthy(left) else self.evaluate(node.child_by_field_name("right"))
            absent = left is None or left is UNDEFINED
            return self.evaluate(node.child_by_field_name("right")) if absent else left
        right = self.evaluate(node.child_by_field_name("right"))
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        if operator in {"===", "=="}:
            return left == right and type(left) is type(right)
        if operator in {"!==", "!="}:
            return not (left == right and type(left) is type(right))
        if operator == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_STRING_CHARS:
                return self._bounded(left + right[: MAX_STRING_CHARS + 1])
            return left + right
        return UNKNOWN


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _unescape(escaped: str) -> str:
    return _ESCAPES.get(escaped[1:], escaped[1:])


def _literal_piece(node: Node) -> str | None:
    """The text a string's fragment or escape sequence stands for; None for anything else."""
    if node.type == "string_fragment":
        return _text(node)
    if node.type == "escape_sequence":
        return _unescape(_text(node))
    return None


def _string_value(node: Node) -> str:
    pieces = (_literal_piece(child) for child in node.named_children)
    return "".join(piece for piece in pieces if piece is not None)


def _key(node: Node) -> str | None:
    if node.type == "shorthand_property_identifier":
        return _text(node)
    if node.type != "pair":
        return None
    key = node.child_by_field_name("key")
    if key is None:
        return None
    if key.type == "string":
        return _string_value(key)
    if key.type in {"property_identifier", "number"}:
        return _text(key)
    return None
