"""Parse one Docusaurus Markdown/MDX file into front matter and readable, anchored sections.

Why this shape: retrieval needs text a reader (and an embedder) can use, cut where the page's
headings cut it, each piece carrying the exact id Docusaurus renders for its heading so that a
citation lands on the right spot. So this module does three things, and no I/O:

1. Front matter: the leading ``---`` YAML block, loaded with PyYAML (safe loader).
2. MDX cleanup, line-oriented and fence-aware: ESM ``import``/``export`` blocks, JSX tags
   (keeping their text children, and a ``<TabItem label>`` as a line), HTML and ``{/* */}``
   comments and admonition fences (``:::tip Title`` becomes ``Tip: Title``) are removed; fenced
   code is kept whole with its info string (language, ``title="..."``); links are reduced to
   their text. Code fences may be indented inside JSX, as MDX allows.
3. Structure: markdown-it-py (CommonMark + tables, indented code disabled as in MDX) finds the
   headings of the cleaned text, so ``#`` lines inside code are never headings and setext
   headings are found too. Heading text is the concatenated text of the inline tokens (code
   spans, emphasis and link text included, HTML dropped), like mdast's ``toString`` that
   Docusaurus slugs; the anchor is the explicit ``{#id}`` or the github-slugger slug.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingestion_jobs.code_blocks import DEFAULT_MAGIC_COMMENTS, MagicComment, strip_magic_comments
from ingestion_jobs.partials import expand_partials

__all__ = [
    "FrontmatterError",
    "GithubSlugger",
    "Include",
    "ParsedPage",
    "ParsedSection",
    "github_slug",
    "parse_page",
    "split_frontmatter",
]


class FrontmatterError(ValueError):
    """The leading YAML block is not valid YAML or not a mapping."""


# Resolves an import specifier of the page being parsed to the imported file's text and a
# resolver for that file's own imports; None when it cannot be read (the caller warns).
Include = Callable[[str], "tuple[str, Include | None] | None"]


@dataclass(frozen=True, slots=True)
class ParsedSection:
    """Text under one heading; ``heading``/``anchor`` are None for the intro."""

    heading: str | None
    anchor: str | None
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """A parsed file: its front matter, its first ``# h1`` (if any) and its sections in order."""

    frontmatter: dict[str, Any]
    content_title: str | None
    sections: tuple[ParsedSection, ...] = field(default_factory=tuple)


# --- github-slugger -------------------------------------------------------------------------
#
# No maintained Python port exists on PyPI (the one package named after it is a 2022 0.0.3 with
# no users), so this is a small faithful port of github-slugger 2.x, which Docusaurus uses via
# `createSlugger`: lowercase, delete every code point in the Unicode categories the upstream
# generator strips (Other_Number, all punctuation but connector punctuation and "-", all
# symbols, controls, format, private use, unassigned, separators but " "), except alphabetic
# ones, then turn each space into "-". Duplicates get "-1", "-2", ... like upstream.

_STRIPPED_CATEGORIES = frozenset(
    {"No", "Ps", "Pe", "Pi", "Pf", "Po", "Pd", "Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"}
)
# Symbols (So) that Unicode also marks Alphabetic: circled and squared Latin letters. Upstream
# removes Alphabetic code points from the strip set; Python has no Alphabetic property, and all
# other Alphabetic code points are letters, marks or letter numbers, which are kept anyway.
_ALPHABETIC_SYMBOLS = (
    (0x24B6, 0x24E9),
    (0x1F130, 0x1F149),
    (0x1F150, 0x1F169),
    (0x1F170, 0x1F189),
)


@lru_cache(maxsize=8192)
def _is_stripped(char: str) -> bool:
    if char in " -":
        return False
    category = unicodedata.category(char)
    if category not in _STRIPPED_CATEGORIES and category[0] != "S":
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in _ALPHABETIC_SYMBOLS)


def github_slug(value: str, *, maintain_case: bool = False) -> str:
    """Slug one string exactly like github-slugger's ``slug()`` (no de-duplication)."""
    if not maintain_case:
        value = value.lower()
    return "".join(ch for ch in value if not _is_stripped(ch)).replace(" ", "-")


class GithubSlugger:
    """Per-page slugger: the second "Intro" becomes "intro-1", like github-slugger's class."""

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, value: str, *, maintain_case: bool = False) -> str:
        result = original = github_slug(value, maintain_case=maintain_case)
        while result in self._occurrences:
            self._occurrences[original] += 1
            result = f"{original}-{self._occurrences[original]}"
        self._occurrences[result] = 0
        return result


# --- front matter ---------------------------------------------------------------------------

_FRONTMATTER = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def split_frontmatter(raw: str) -> tuple[dict[str, Any], str]:
    """Return (front matter, body). Raises FrontmatterError when the YAML block is invalid."""
    match = _FRONTMATTER.match(raw)
    if match is None:
        return {}, raw
    try:
        data = yaml.load(match.group(1), Loader=_YAML_LOADER)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"front matter is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontmatterError("front matter is not a mapping of keys to values")
    return {str(key): value for key, value in data.items()}, raw[match.end() :]


# --- MDX cleanup ----------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>`{3,}|~{3,})(?P<info>.*)$")
_ESM_START = re.compile(r"^(?:import|export)[\s{*]")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^<>\s]+)>")
# A JSX/HTML tag, possibly over several lines, whose attribute values may be strings or
# brace expressions nested up to three levels deep (`values={[{label: 'a'}]}`).
_BRACES = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"
_JSX_TAG = re.compile(
    r"<(?P<close>/?)(?P<name>[A-Za-z][\w.:-]*)"
    r"(?P<attrs>(?:\s+(?:[^<>{}\"'/]|/(?!>)|\"[^\"]*\"|'[^']*'|" + _BRACES + r")*)?)"
    r"\s*/?>"
)
_FRAGMENT = re.compile(r"</?>")
_LABEL_ATTR = re.compile(r"""\blabel=(?:"([^"]*)"|'([^']*)'|\{["'`]([^"'`]*)["'`]\})""")
_ADMONITION = re.compile(r"^\s*:{3,}\s*(?P<kind>[A-Za-z][\w-]*)?\s*(?:\[(?P<t1>.*)\]|(?P<t2>.*))$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE)
_STRING_EXPRESSION = re.compile(r"\{\s*(['\"])([^'\"\n]*)\1\s*\}")
_INDENTED_HEADING = re.compile(r"^[ \t]{4,}(#{1,6}[ \t])", re.MULTILINE)
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_MANY_BLANKS = re.compile(r"\n{3,}")


def _keep_lines(match: re.Match[str]) -> str:
    """Replace a multi-line match by as many newlines, so the line structure stays."""
    return "\n" * match.group(0).count("\n")


def _replace_tag(match: re.Match[str]) -> str:
    newlines = "\n" * match.group(0).count("\n")
    if not match.group("close"):
        label = _LABEL_ATTR.search(match.group("attrs") or "")
        if label:
            text = next(group for group in label.groups() if group is not None)
            return f"\n{text}:\n{newlines}"
    if match.group("name").lower() == "br":
        return " " + newlines
    return newlines


# A heading ending in a comment: Docusaurus 3 takes ``{/* #id */}`` (or ``<!-- #id -->``) as
# the heading's id when the comment's first word starts with "#" (mdx-loader remark/headings).
# Measured: an HTML comment (``<!-- #id -->``) is not an id in MDX; it is dropped, and the
# space before it stays in the slugged text ("Name <!-- x -->" -> "name-"). SLUG_SPACE marks it.
_HEADING_COMMENT = re.compile(
    r"^(?P<head>[ \t]{0,3}#{1,6}[ \t].*?)(?P<ws>[ \t]*)"
    r"(?:\{/\*(?P<mdx>.*?)\*/\}|<!--(?P<html>.*?)-->)[ \t]*$",
    re.MULTILINE,
)
_SLUG_SPACE = "\ue000"  # private use: kept by the parser, dropped from shown heading text


def _comment_id_to_classic(match: re.Match[str]) -> str:
    if match.group("mdx") is not None:
        first = match.group("mdx").strip().split(" ")[0]
        if first.startswith("#") and len(first) > 1:
            return f"{match.group('head')} {{#{first[1:]}}}"
    return match.group("head") + (match.group("ws") and match.group("ws") + _SLUG_SPACE)


def _clean_prose(text: str) -> str:
    """Strip MDX syntax from text that holds no fenced code, keeping what a reader reads."""
    text = _HEADING_COMMENT.sub(_comment_id_to_classic, text)
    text = _HTML_COMMENT.sub(_keep_lines, text)
    text = _MDX_COMMENT.sub(_keep_lines, text)

    # ESM blocks: in MDX an import/export at the start of a line runs to the next blank line.
    kept: list[str] = []
    in_esm = False
    for line in text.split("\n"):
        if in_esm:
            in_esm = bool(line.strip())
            continue
        if _ESM_START.match(line):
            in_esm = True
            continue
        kept.append(line)
    text = "\n".join(kept)

    codes: list[str] = []

    def protect(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return f"\x00{len(codes) - 1}\x00"

    text = _INLINE_CODE.sub(protect, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _JSX_TAG.sub(_replace_tag, text)
    text = _FRAGMENT.sub("", text)
    text = _STRING_EXPRESSION.sub(r"\2", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _LINK_DEFINITION.sub("", text)
    text = _INDENTED_HEADING.sub(r"\1", text)

    lines: list[str] = []
    for line in text.split("\n"):
        admonition = _ADMONITION.match(line)
        if admonition:
            kind = admonition.group("kind")
            if kind:
                title = (admonition.group("t1") or admonition.group("t2") or "").strip()
                # Docusaurus shows the title, or the kind when there is none.
                lines.append(f"{title}:" if title else f"{kind.capitalize()}:")
                lines.append("")
            continue
        lines.append(line.rstrip())
    text = "\n".join(lines)
    return _PLACEHOLDER.sub(lambda m: codes[int(m.group(1))], text)


def _clean_body(body: str, magic_comments: tuple[MagicComment, ...]) -> str:
    """Clean prose runs and keep fenced code blocks whole, dedented to column 0, without the
    magic-comment lines Docusaurus does not show."""
    out: list[str] = []
    prose: list[str] = []
    lines = body.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE_OPEN.match(line)
        if fence is None or (fence.group("marker")[0] == "`" and "`" in fence.group("info")):
            prose.append(line)
            index += 1
            continue
        if prose:
            out.append(_clean_prose("\n".join(prose)))
            prose = []
        indent = len(fence.group("indent"))
        marker = fence.group("marker")
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        info = fence.group("info").strip()
        out.append(f"{marker}{info}")
        index += 1
        code: list[str] = []
        while index < len(lines) and not closing.match(lines[index]):
            code_line = lines[index]
            strip = len(code_line) - len(code_line.lstrip(" \t"))
            code.append(code_line[min(indent, strip) :])
            index += 1
        out.extend(strip_magic_comments(info, code, magic_comments))
        out.append(marker)  # an unclosed fence runs to the end, as in CommonMark
        index += 1
    if prose:
        out.append(_clean_prose("\n".join(prose)))
    return _MANY_BLANKS.sub("\n\n", "\n".join(out))


# --- structure ------------------------------------------------------------------------------

# Docusaurus's classic ``{#id}`` (``@docusaurus/utils`` parseMarkdownHeadingId): any characters
# but "{#" and "}" in the id.
_HEADING_ID = re.compile(r"\s*\{#(?P<id>(?:.(?!\{#|\}))*.)\}$")
# A remark-directive text directive (``:name``, as in ``a:b``): Docusaurus parses it inside
# headings too, and it adds no text to what the id is made of, although the page shows it.
_TEXT_DIRECTIVE = re.compile(r"(?<!:):[A-Za-z][\w-]*(?:\[[^\]]*\])?(?:\{[^}]*\})?")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Built lazily and once: no work at import time, and the parser is reusable.
    return MarkdownIt("commonmark").enable("table").disable("code")


def _inline_text(tokens: list[Token] | None, *, for_id: bool = False) -> str:
    """Concatenate inline text like mdast-util-to-string: text, code, image alt; no HTML.

    ``for_id``: the text Docusaurus makes the id from, without text directives."""
    parts: list[str] = []
    for token in tokens or []:
        if token.type == "text":
            parts.append(_TEXT_DIRECTIVE.sub("", token.content) if for_id else token.content)
        elif token.type == "code_inline":
            parts.append(token.content)
        elif token.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
        elif token.type == "image":
            parts.append(_inline_text(token.children, for_id=for_id))
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Heading:
    start: int
    end: int
    level: int
    text: str
    anchor: str


def _find_headings(cleaned: str, maintain_case: bool) -> list[_Heading]:
    tokens = _markdown().parse(cleaned)
    slugger = GithubSlugger()
    headings: list[_Heading] = []
    for position, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None:
            continue
        children = tokens[position + 1].children
        shown = _inline_text(children).replace(_SLUG_SPACE, "").strip()
        id_text = _inline_text(children, for_id=True).strip().replace(_SLUG_SPACE, "")
        explicit = _HEADING_ID.search(id_text)
        if explicit:
            # Docusaurus takes an explicit id as is and does not register it with the slugger;
            # the page keeps showing it when a directive split it (then it does not end `shown`).
            anchor = explicit.group("id").strip()
            if shown.endswith(explicit.group(0).strip()):
                shown = shown[: len(shown) - len(explicit.group(0).strip())].strip()
            text = shown
        else:
            text, anchor = shown, slugger.slug(id_text, maintain_case=maintain_case)
        headings.append(_Heading(token.map[0], token.map[1], int(token.tag[1]), text, anchor))
    return headings


def _as_markdown(parsed: ParsedPage) -> str:
    """A parsed partial as Markdown to inline: its headings carry their own ids explicitly."""
    parts: list[str] = []
    for section in parsed.sections:
        if section.heading is not None:
            parts.append(f"{'#' * section.level} {section.heading} {{#{section.anchor}}}")
        parts.append(section.text)
    return "\n\n".join(parts)


def parse_page(
    raw: str,
    *,
    include: Include | None = None,
    maintain_case: bool = False,
    magic_comments: tuple[MagicComment, ...] = DEFAULT_MAGIC_COMMENTS,
) -> ParsedPage:
    """Parse a Markdown/MDX file's text. Raises FrontmatterError for a bad YAML block.

    ``include`` reads the ``.md``/``.mdx`` files the page imports, whose content is then
    parsed (with a slugger of its own, as Docusaurus compiles each file on its own) and
    indexed in place of their ``<Component />``. ``maintain_case`` is the config's
    ``markdown.anchors.maintainCase``; ``magic_comments`` the code directives to drop.
    """
    raw = raw.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    frontmatter, body = split_frontmatter(raw)
    if include is not None:
        nested: dict[str, Include | None] = {}

        def fetch(spec: str) -> str | None:
            found = include(spec)
            if found is None:
                return None
            nested[spec] = found[1]
            return found[0]

        def render(spec: str, text: str) -> str:
            partial = parse_page(
                text,
                include=nested.get(spec),
                maintain_case=maintain_case,
                magic_comments=magic_comments,
            )
            return _as_markdown(partial)

        body = expand_partials(body, fetch, render)
    cleaned = _clean_body(body, magic_comments)
    lines = cleaned.split("\n")
    headings = _find_headings(cleaned, maintain_case)

    content_title: str | None = next((h.text for h in headings if h.level == 1), None)
    intro_end = headings[0].start if headings else len(lines)
    intro_lines = lines[:intro_end]
    body_headings = headings
    # A leading "# Title" is the page title, not a section: its text joins the intro.
    if headings and headings[0].level == 1 and not "\n".join(intro_lines).strip():
        next_start = headings[1].start if len(headings) > 1 else len(lines)
        intro_lines = lines[headings[0].end : next_start]
        body_headings = headings[1:]

    sections = [ParsedSection(None, None, 1, "\n".join(intro_lines).strip())]
    for index, heading in enumerate(body_headings):
        end = body_headings[index + 1].start if index + 1 < len(body_headings) else len(lines)
        text = "\n".join(lines[heading.end : end]).strip()
        sections.append(ParsedSection(heading.text, heading.anchor, heading.level, text))
    return ParsedPage(frontmatter, content_title, tuple(sections))
