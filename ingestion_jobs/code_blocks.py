"""What Docusaurus shows of a fenced code block: its lines without magic comments.

Docusaurus's CodeBlock removes every line that holds only a magic comment
(``// highlight-next-line``, ``# highlight-start``, ``{/* highlight-end */}``, ...) before it
renders the code, unless the block's metastring gives a line range (``{1,3-4}``), in which
case the code is shown untouched. Which comment syntaxes count depends on the language; the
table below is theme-common's ``codeBlockUtils`` (Docusaurus 3.x), and the directives are
``themeConfig.prism.magicComments`` (default: ``highlight-next-line``,
``highlight-start``/``highlight-end``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DEFAULT_MAGIC_COMMENTS", "MagicComment", "strip_magic_comments"]


@dataclass(frozen=True, slots=True)
class MagicComment:
    """A code-block directive Docusaurus removes from code (``// highlight-next-line``)."""

    line: str | None
    block_start: str | None
    block_end: str | None


DEFAULT_MAGIC_COMMENTS = (MagicComment("highlight-next-line", "highlight-start", "highlight-end"),)

_COMMENTS = {
    "js": (r"\/\/", ""),
    "jsBlock": (r"\/\*", r"\*\/"),
    "jsx": (r"\{\s*\/\*", r"\*\/\s*\}"),
    "bash": ("#", ""),
    "html": ("<!--", "-->"),
    "lua": ("--", ""),
    "wasm": (r"\;\;", ""),
    "tex": ("%", ""),
    "vb": ("['‘’]", ""),
    "vbnet": (r"(?:_\s*)?['‘’]", ""),
    "rem": (r"[Rr][Ee][Mm]\b", ""),
    "f90": ("!", ""),
    "ml": (r"\(\*", r"\*\)"),
    "cobol": (r"\*>", ""),
}
_POPULAR = ("js", "jsBlock", "jsx", "bash", "html")
_BY_LANGUAGE = {
    **dict.fromkeys(("js", "javascript", "ts", "typescript"), ("js", "jsBlock")),
    **dict.fromkeys(("jsx", "tsx"), ("js", "jsBlock", "jsx")),
    "html": ("js", "jsBlock", "html"),
    **dict.fromkeys(("python", "py", "bash"), ("bash",)),
    **dict.fromkeys(("markdown", "md"), ("html", "jsx", "bash")),
    **dict.fromkeys(("tex", "latex", "matlab"), ("tex",)),
    **dict.fromkeys(("lua", "haskell"), ("lua",)),
    "sql": ("lua", "jsBlock"),
    "wasm": ("wasm",),
    **dict.fromkeys(("vb", "vba", "visual-basic"), ("vb", "rem")),
    "vbnet": ("vbnet", "rem"),
    "batch": ("rem",),
    "basic": ("rem", "f90"),
    "fsharp": ("js", "ml"),
    **dict.fromkeys(("ocaml", "sml"), ("ml",)),
    "fortran": ("f90",),
    "cobol": ("cobol",),
}
_LINE_RANGE = re.compile(r"\{[\d,-]+\}")


@lru_cache(maxsize=64)
def _directive_line(language: str, comments: tuple[MagicComment, ...]) -> re.Pattern[str] | None:
    directives = [
        re.escape(d)
        for comment in comments
        for d in (comment.line, comment.block_start, comment.block_end)
        if d
    ]
    if not directives:
        return None
    alternatives = "|".join(directives)
    styles = _BY_LANGUAGE.get(language, _POPULAR)
    pattern = "|".join(
        rf"(?:{_COMMENTS[s][0]}\s*(?:{alternatives})\s*{_COMMENTS[s][1]})" for s in styles
    )
    return re.compile(rf"^\s*(?:{pattern})\s*$")


def strip_magic_comments(
    info: str,
    lines: Sequence[str],
    comments: tuple[MagicComment, ...] = DEFAULT_MAGIC_COMMENTS,
) -> list[str]:
    """The code lines a reader sees; ``info`` is the fence's info string (``js title="x"``)."""
    language, _, metastring = info.strip().partition(" ")
    if _LINE_RANGE.search(metastring):
        return list(lines)
    directive = _directive_line(language.lower() or "text", comments)
    if directive is None:
        return list(lines)
    return [line for line in lines if not directive.match(line)]
