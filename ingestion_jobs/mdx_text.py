"""MDX to readable text: what a reader sees of a page's source, line structure kept.

Line-oriented and fence-aware: ESM ``import``/``export`` blocks, JSX tags (keeping their text
children, a ``<TabItem label>`` as a line, and the prose a component is given as string props,
see ``prop_texts``), HTML and ``{/* */}`` comments are removed;
an admonition fence shows its title, or its kind when untitled (``:::tip[Title]`` ->
``Title:``), as Docusaurus renders it; fenced code is kept whole with its info string
(language, ``title="..."``) but without magic-comment lines; links are reduced to their text;
a heading's trailing ``{/* #id */}`` becomes the classic ``{#id}``. Code fences may be
indented inside JSX, as MDX allows.
"""

from __future__ import annotations

import re

from ingestion_jobs.code_blocks import MagicComment, strip_magic_comments

__all__ = [
    "ID_ONLY",
    "LITERAL_CLOSE",
    "LITERAL_OPEN",
    "PROSE_PROPS",
    "SHOWN_ONLY",
    "SLUG_SPACE",
    "clean_body",
    "emojize",
    "prop_texts",
]

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
# name="text", name='text', name={"text"}, name={'text'}, name={`text`} (no ${} in the last).
_STRING_ATTR = re.compile(
    r"""(?<![\w.-])(?P<name>[A-Za-z_][\w-]*)=(?:"(?P<d>[^"]*)"|'(?P<s>[^']*)'"""
    r"""|\{\s*(?:"(?P<ed>[^"]*)"|'(?P<es>[^']*)'|`(?P<et>[^`$]*)`)\s*\})"""
)
#: Props whose string is text the component shows (cards, callouts, feature grids, heroes).
PROSE_PROPS = frozenset(
    {
        "title",
        "description",
        "children",
        "summary",
        "caption",
        "heading",
        "subheading",
        "subtitle",
        "tagline",
        "text",
        "content",
        "message",
        "question",
        "answer",
        "body",
        "details",
    }
)
#: Props that never hold shown text, however many words: links, styling, ids, media.
_NOT_PROSE = frozenset(
    {
        "alt",
        "class",
        "classname",
        "style",
        "href",
        "src",
        "to",
        "url",
        "link",
        "path",
        "id",
        "key",
        "type",
        "language",
        "lang",
        "icon",
        "image",
        "img",
        "variant",
        "size",
        "color",
        "theme",
        "groupid",
        "value",
        "target",
        "rel",
        "width",
        "height",
        "aria-label",
        "tooltip",
    }
)
_ADMONITION = re.compile(r"^\s*:{3,}\s*(?P<kind>[A-Za-z][\w-]*)?\s*(?:\[(?P<t1>.*)\]|(?P<t2>.*))$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE)
_STRING_EXPRESSION = re.compile(r"\{\s*(['\"])([^'\"\n]*)\1\s*\}")
_INDENTED_HEADING = re.compile(r"^[ \t]{4,}(#{1,6}[ \t])", re.MULTILINE)
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_HEADING_SLOT = re.compile("\x02(\\d+)\x02")
_MANY_BLANKS = re.compile(r"\n{3,}")


def _keep_lines(match: re.Match[str]) -> str:
    """Replace a multi-line match by as many newlines, so the line structure stays."""
    return "\n" * match.group(0).count("\n")


def prop_texts(name: str, attrs: str) -> list[str]:
    """The text a component (a capitalised JSX tag, ``<Card>``) is given as string props, in
    the order they are written: a prop of ``PROSE_PROPS`` (``title=``, ``description=``), or
    any other string prop of three words or more (prose, not a token such as a colour or an
    id), except props that hold links, styles, ids or media (``href``, ``className``, ``alt``).
    HTML elements (lowercase) are left alone: their attributes are tooltips and metadata, not
    page text. ``label`` is not here: it is a line of its own (see ``_replace_tag``)."""
    if not name[:1].isupper():
        return []
    texts: list[str] = []
    for match in _STRING_ATTR.finditer(attrs):
        prop = match.group("name")
        value = next(g for g in match.group("d", "s", "ed", "es", "et") if g is not None)
        value = " ".join(value.split())
        lowered = prop.lower()
        if not value or lowered == "label" or lowered in _NOT_PROSE:
            continue
        if lowered in PROSE_PROPS or (len(value.split()) >= 3 and "://" not in value):
            texts.append(value)
    return texts


def _replace_tag(match: re.Match[str]) -> str:
    newlines = "\n" * match.group(0).count("\n")
    if not match.group("close"):
        label = _LABEL_ATTR.search(match.group("attrs") or "")
        if label:
            text = next(group for group in label.groups() if group is not None)
            return f"\n{text}:\n{newlines}"
        props = prop_texts(match.group("name"), match.group("attrs") or "")
        if props:
            joined = "\n".join(props)
            return f"\n\n{joined}\n\n{newlines}"
    if match.group("name").lower() == "br":
        return " " + newlines
    return newlines


# Heading lines get their own pass (``_clean_heading``) because Docusaurus makes a heading's id
# from mdast ``toString`` of its children before any other plugin runs (mdx-loader
# remark/headings, checked against 3.10.2 builds by the conformance suite, fixture
# ``heading-rules``):
# - a JSX/HTML element adds only its children's text, and the spaces around it stay:
#   ``## <a name="x"></a> Title`` -> ``-title``, ``## Buoys <a></a>`` -> ``buoys-``;
# - in MDX, a heading's LAST child ``{/* #id */}`` (one comment, first word ``#id``) is its id;
#   any other ``{...}`` stays in the id with its source text and is not shown (a string
#   expression ``{'x'}`` shows ``x``): ``## Mooring {/* my-id */}`` -> ``mooring--my-id-``,
#   ``## {/* #a */} b`` -> ``-a--b``;
# - an HTML comment is dropped, the space before it stays (``Name <!-- x -->`` -> ``name-``);
#   only in CommonMark with ``markdown.mdx1Compat.comments: false`` (or ``future.v4``) is a
#   trailing ``<!-- #id -->`` the heading's id (with the compat on, remark-comment removes it);
# - ``:shortcode:`` emoji (``markdown.emoji``, on by default) are replaced after the id is
#   made: the id keeps ``gear``, the page shows the emoji;
# - in CommonMark ``{/* ... */}`` is plain text (between LITERAL_OPEN/LITERAL_CLOSE marks).
# Marks, all private-use code points kept by the Markdown parser: SLUG_SPACE (nothing, but it
# keeps the spaces next to it from being trimmed), ID_ONLY (text in the id, not shown),
# SHOWN_ONLY (text shown, not in the id).
SLUG_SPACE = "\ue000"
LITERAL_OPEN, LITERAL_CLOSE = "\ue001", "\ue002"  # "{/*" and "*/}" shown as text
ID_ONLY = ("\ue003", "\ue004")
SHOWN_ONLY = ("\ue005", "\ue006")

_ATX_HEADING = re.compile(r"^(?P<hashes>[ \t]{0,3}#{1,6})(?P<rest>(?:[ \t].*)?)$")
_TRAILING_MDX_COMMENT = re.compile(r"[ \t]*\{/\*(?P<comment>(?:(?!\*/).)*)\*/\}[ \t]*$")
_TRAILING_HTML_COMMENT = re.compile(r"[ \t]*<!--(?P<comment>.*?)-->[ \t]*$")
# An MDX expression; not the classic ``{#id}`` (Docusaurus escapes it before MDX parses it).
_EXPRESSION = re.compile(r"(?<!\\)(?!\{#)" + _BRACES)
_EXPRESSION_SLOT = re.compile("\x01(\\d+)\x01")
# remark-emoji's RE_EMOJI (ASCII word characters, as JavaScript's \w).
_EMOJI_CODE = re.compile(r":\+1:|:-1:|:[A-Za-z0-9_-]+:")


def _comment_id(comment: str) -> str | None:
    """mdx-loader's getCommentContentHeadingId: the first word, if it starts with "#"."""
    first = comment.strip().split(" ")[0]
    return (first[1:] or None) if first.startswith("#") else None


def emojize(text: str) -> str:
    """``:gear:`` -> the emoji, as remark-emoji renders it; unknown codes stay as written.

    The names are the ``emoji`` package's aliases (GitHub's and Slack's shortcodes), close to
    but not the same list as node-emoji's (emojilib) that remark-emoji uses."""
    import emoji  # lazily: the reader of a site that renders no emoji never loads its table

    def one(match: re.Match[str]) -> str:
        return str(emoji.emojize(match.group(0), language="alias"))

    return _EMOJI_CODE.sub(one, text)


def _heading_text(text: str, mdx: bool, emoji: bool) -> str:
    """A heading's inline text (no inline code) with its marks (see above)."""
    expressions: list[str] = []
    if mdx:

        def expression(match: re.Match[str]) -> str:
            source = match.group(0)[1:-1]
            string = re.fullmatch(r"\s*(['\"])([^'\"\n]*)\1\s*", source)
            shown = f"{SHOWN_ONLY[0]}{string.group(2)}{SHOWN_ONLY[1]}" if string else ""
            expressions.append(f"{ID_ONLY[0]}{source}{ID_ONLY[1]}{shown}{SLUG_SPACE}")
            return f"\x01{len(expressions) - 1}\x01"  # kept apart from the tag pass below

        text = _EXPRESSION.sub(expression, text)
    else:
        text = text.replace("{/*", LITERAL_OPEN).replace("*/}", LITERAL_CLOSE)
    text = _JSX_TAG.sub(SLUG_SPACE, _HTML_COMMENT.sub(SLUG_SPACE, text))
    if emoji:

        def shown(match: re.Match[str]) -> str:
            code = match.group(0)
            glyph = emojize(code)
            if glyph == code:
                return code
            return f"{ID_ONLY[0]}{code}{ID_ONLY[1]}{SHOWN_ONLY[0]}{glyph}{SHOWN_ONLY[1]}"

        text = _EMOJI_CODE.sub(shown, text)
    return _EXPRESSION_SLOT.sub(lambda m: expressions[int(m.group(1))], text)


def _clean_heading(match: re.Match[str], mdx: bool, html_comment_ids: bool, emoji: bool) -> str:
    hashes, rest = match.group("hashes"), match.group("rest")
    explicit = None
    trailing = _TRAILING_MDX_COMMENT.search(rest) if mdx else None
    if trailing is None and not mdx and html_comment_ids:
        trailing = _TRAILING_HTML_COMMENT.search(rest)
    if trailing is not None and (explicit := _comment_id(trailing.group("comment"))):
        rest = rest[: trailing.start()].rstrip()
    pieces = _INLINE_CODE.split(rest)
    # split() yields text, then (ticks, code) pairs: only the text parts are cleaned.
    out: list[str] = []
    for index in range(0, len(pieces), 3):
        out.append(_heading_text(pieces[index], mdx, emoji))
        if index + 2 < len(pieces):
            out.append(pieces[index + 1] + pieces[index + 2] + pieces[index + 1])
    cleaned = "".join(out)
    return f"{hashes}{cleaned} {{#{explicit}}}" if explicit else f"{hashes}{cleaned}"


def _clean_prose(text: str, mdx: bool, html_comment_ids: bool, emoji: bool) -> str:
    """Strip MDX syntax from text that holds no fenced code, keeping what a reader reads."""
    # Heading lines are cleaned on their own and kept out of the passes below (their marks
    # hold source text, e.g. an expression's, that those passes would rewrite).
    headings: list[str] = []

    def heading_slot(line: str) -> str:
        match = _ATX_HEADING.match(line)
        if match is None:
            return line
        headings.append(_clean_heading(match, mdx, html_comment_ids, emoji))
        return f"\x02{len(headings) - 1}\x02"

    text = "\n".join(heading_slot(line) for line in text.split("\n"))
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
        lines.append(emojize(line.rstrip()) if emoji else line.rstrip())
    text = "\n".join(lines)
    text = _PLACEHOLDER.sub(lambda m: codes[int(m.group(1))], text)
    return _HEADING_SLOT.sub(lambda m: headings[int(m.group(1))], text)


def clean_body(
    body: str,
    magic_comments: tuple[MagicComment, ...],
    *,
    mdx: bool = True,
    html_comment_ids: bool = False,
    emoji: bool = True,
) -> str:
    """Clean prose runs and keep fenced code blocks whole, dedented to column 0, without the
    magic-comment lines Docusaurus does not show. ``mdx``: the file is compiled as MDX (else
    as CommonMark), which decides the heading forms above; ``html_comment_ids``: the config
    turns ``markdown.mdx1Compat.comments`` off; ``emoji``: ``markdown.emoji``."""
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
            out.append(_clean_prose("\n".join(prose), mdx, html_comment_ids, emoji))
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
        out.append(_clean_prose("\n".join(prose), mdx, html_comment_ids, emoji))
    return _MANY_BLANKS.sub("\n\n", "\n".join(out))
