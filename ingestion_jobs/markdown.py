"""Parse one Docusaurus Markdown/MDX file into front matter and readable, anchored sections.

Why this shape: retrieval needs text a reader (and an embedder) can use, cut where the page's
headings cut it, each piece carrying the exact id Docusaurus renders for its heading so that a
citation lands on the right spot. So this module does three things, and no I/O:

1. Front matter: the leading ``---`` YAML block, loaded with PyYAML (safe loader).
2. Content: imported ``.md``/``.mdx`` partials inlined (``partials.py``), then MDX reduced to
   the text a reader sees (``mdx_text.py``: JSX, comments, admonition fences, magic comments).
3. Structure: markdown-it-py (CommonMark + tables, indented code disabled as in MDX) finds the
   headings of the cleaned text, so ``#`` lines inside code are never headings and setext
   headings are found too. Heading text is the concatenated text of the inline tokens (code
   spans, emphasis and link text included, HTML dropped), like mdast's ``toString`` that
   Docusaurus slugs; the anchor is the explicit ``{#id}`` (any characters but ``{#`` and
   ``}``; ``{/* #id */}`` too) or the github-slugger slug (``slugger.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingestion_jobs.code_blocks import DEFAULT_MAGIC_COMMENTS, MagicComment
from ingestion_jobs.mdx_text import (
    ID_ONLY,
    LITERAL_CLOSE,
    LITERAL_OPEN,
    SHOWN_ONLY,
    SLUG_SPACE,
    clean_body,
)
from ingestion_jobs.partials import expand_partials
from ingestion_jobs.slugger import GithubSlugger, github_slug

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
    """The leading YAML block is not valid YAML, not a mapping, or expands beyond a budget."""


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


# --- front matter ---------------------------------------------------------------------------

_FRONTMATTER = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# What YAML aliases may add to a front matter block, in nodes plus scalar characters, beyond the
# block's own length: each `*alias` stands for a copy of what its anchor holds, so 0.5 KB of
# nested aliases (a "billion laughs") stand for gigabytes once a title or a tag list is
# written out (issue 30). Without aliases a block never expands beyond its length.
ALIAS_EXPANSION_BUDGET = 100_000


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """The size of `root` with every alias expanded (1 per node plus its scalar's length),
    counted over the node graph (each node once, iteratively: nesting may be deep); a value
    over `limit` (a recursive alias counts as infinite) stops the count early."""
    sizes: dict[int, int] = {}
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while pending:
        node, children_done = pending.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1 + len(node.value)
            continue
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            open_nodes.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(child)] for child in children))
            if sizes[key] > limit:
                return sizes[key]
            continue
        if key in open_nodes:
            return limit + 1  # an alias to a node that holds it: infinite
        open_nodes.add(key)
        pending.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                return limit + 1
            if id(child) not in sizes:
                pending.append((child, False))
    return sizes[id(root)]


def split_frontmatter(raw: str) -> tuple[dict[str, Any], str]:
    """Return (front matter, body). Raises FrontmatterError when the YAML block is invalid, or
    when its aliases expand it by more than ALIAS_EXPANSION_BUDGET."""
    match = _FRONTMATTER.match(raw)
    if match is None:
        return {}, raw
    block = match.group(1)
    loader = _YAML_LOADER(block)
    try:
        node = loader.get_single_node()
        if node is not None:
            limit = len(block) + ALIAS_EXPANSION_BUDGET
            if _expanded_size(node, limit) > limit:
                raise FrontmatterError(
                    f"front matter aliases expand it beyond {limit} nodes and characters"
                )
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise FrontmatterError(f"front matter is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontmatterError("front matter is not a mapping of keys to values")
    return {str(key): value for key, value in data.items()}, raw[match.end() :]


# --- structure ------------------------------------------------------------------------------

# Docusaurus's classic ``{#id}`` (``@docusaurus/utils`` parseMarkdownHeadingId): any characters
# but "{#" and "}" in the id.
_HEADING_ID = re.compile(r"\s*\{#(?P<id>(?:.(?!\{#|\}))*.)\}$")
# A remark-directive text directive (``:name``, as in ``a:b``): Docusaurus parses it inside
# headings too, and it adds no text to what the id is made of, although the page shows it.
# Measured: ``a:b`` and ``x{#id:y}`` hold one, ``:emoji_code:`` (a colon after the name) not.
_TEXT_DIRECTIVE = re.compile(r"(?<!:):[A-Za-z][\w-]*+(?!:)(?:\[[^\]]*\])?(?:\{[^}]*\})?")


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


def _literal(text: str) -> str:
    return text.replace(LITERAL_OPEN, "{/*").replace(LITERAL_CLOSE, "*/}")


_ID_ONLY_SPAN = re.compile(f"{ID_ONLY[0]}.*?{ID_ONLY[1]}")
_SHOWN_ONLY_SPAN = re.compile(f"{SHOWN_ONLY[0]}.*?{SHOWN_ONLY[1]}")
_MARKS = str.maketrans(
    dict.fromkeys(SLUG_SPACE + ID_ONLY[0] + ID_ONLY[1] + SHOWN_ONLY[0] + SHOWN_ONLY[1])
)


def _shown_text(marked: str) -> str:
    """A heading as the page shows it (mdx_text's marks resolved)."""
    return _literal(_ID_ONLY_SPAN.sub("", marked).translate(_MARKS)).strip()


def _id_source(marked: str) -> str:
    """The text Docusaurus slugs: not trimmed, since the spaces next to a dropped element or
    comment stay in the id (``## <a></a> Title`` -> ``-title``)."""
    return _literal(_SHOWN_ONLY_SPAN.sub("", marked).translate(_MARKS))


def _find_headings(cleaned: str, maintain_case: bool) -> list[_Heading]:
    tokens = _markdown().parse(cleaned)
    slugger = GithubSlugger()
    headings: list[_Heading] = []
    for position, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None:
            continue
        children = tokens[position + 1].children
        shown = _shown_text(_inline_text(children))
        id_text = _id_source(_inline_text(children, for_id=True))
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
    markdown_format: str = "mdx",
    mdx_file: bool = True,
    max_chars: int | None = None,
    html_comment_ids: bool = False,
    emoji: bool = True,
) -> ParsedPage:
    """Parse a Markdown/MDX file's text. Raises FrontmatterError for a bad YAML block, and
    ExpansionTooLarge when the page with its partials inlined (at every depth) would exceed
    ``max_chars``.

    ``include`` reads the ``.md``/``.mdx`` files the page imports, whose content is then
    parsed (with a slugger of its own, as Docusaurus compiles each file on its own) and
    indexed in place of their ``<Component />``. ``maintain_case`` is the config's
    ``markdown.anchors.maintainCase``; ``magic_comments`` the code directives to drop;
    ``markdown_format`` the config's ``markdown.format`` ('mdx', 'md' or 'detect', which
    compiles only ``.mdx`` files, ``mdx_file``, as MDX); ``html_comment_ids`` is true when
    the config turns ``markdown.mdx1Compat.comments`` off (a CommonMark heading's trailing
    ``<!-- #id -->`` is then its id); ``emoji`` the config's ``markdown.emoji``.
    """
    mdx = markdown_format == "mdx" or (markdown_format == "detect" and mdx_file)
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
                markdown_format=markdown_format,
                mdx_file=spec.endswith(".mdx"),
                max_chars=max_chars,
                html_comment_ids=html_comment_ids,
                emoji=emoji,
            )
            return _as_markdown(partial)

        body = expand_partials(body, fetch, render, max_chars=max_chars)
    cleaned = clean_body(
        body, magic_comments, mdx=mdx, html_comment_ids=html_comment_ids, emoji=emoji
    )
    lines = cleaned.split("\n")
    headings = _find_headings(cleaned, maintain_case)

    content_title: str | None = next((h.text for h in headings if h.level == 1), None)
    # An h1 gets no id on the page (theme-classic's Heading renders `h1` without one, though
    # the slugger counts it: `# A` then `## A` gives `a-1`), so it starts no section: a leading
    # "# Title" is the page's title and its text joins the intro, and an h1 further down is a
    # line of the section it is in.
    title = headings[0] if headings and headings[0].level == 1 else None
    if title is not None and "\n".join(lines[: title.start]).strip():
        title = None
    for heading in headings:
        if heading.level == 1 and heading is not title:
            lines[heading.start : heading.end] = [heading.text] + [""] * (
                heading.end - heading.start - 1
            )
    body_headings = [heading for heading in headings if heading.level > 1]
    intro_end = body_headings[0].start if body_headings else len(lines)
    intro_start = title.end if title is not None else 0
    intro_lines = lines[intro_start:intro_end]

    sections = [ParsedSection(None, None, 1, "\n".join(intro_lines).strip())]
    for index, heading in enumerate(body_headings):
        end = body_headings[index + 1].start if index + 1 < len(body_headings) else len(lines)
        text = "\n".join(lines[heading.end : end]).strip()
        sections.append(ParsedSection(heading.text, heading.anchor, heading.level, text))
    return ParsedPage(frontmatter, content_title, tuple(sections))
