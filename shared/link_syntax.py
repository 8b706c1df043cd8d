"""How the link policy (shared/link_policy.py) reads text: the decoded view a Markdown renderer
or a browser would see, and the patterns of what a link looks like on that view.

The view decodes HTML entities (`&#58;`, `&colon;`), percent escapes (`%2F`), Markdown backslash
escapes (`\\:`), NFKC compatibility forms (full-width `：／`) and drops invisible format
characters (zero-width spaces), keeping for each decoded character the span of the original it
came from, so a match on the view can be replaced in the original. The patterns: Markdown links
and images, `<autolinks>`, bare URLs and hosts of every form a renderer could turn into a link,
and Markdown code spans and fences (left as written by `LinkPolicy.clean`).
"""

from __future__ import annotations

import html.entities
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "AUTOLINK",
    "BARE_LINK",
    "CODE",
    "CODE_FENCE",
    "CODE_SPAN",
    "CODE_TAIL",
    "MD_LINK",
    "TRAILING_PUNCT",
    "DecodedView",
    "decoded_view",
]

# --- the decoded view ------------------------------------------------------------------------

_ENTITY = re.compile(r"&(#[0-9]{1,8};?|#[xX][0-9a-fA-F]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};?)")
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")
_ESCAPABLE = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@dataclass(slots=True)
class DecodedView:
    """`text` decoded; `starts[i]`/`ends[i]`: the span of the original that char i came from."""

    text: str
    starts: list[int]
    ends: list[int]

    def span(self, start: int, end: int, original_len: int) -> tuple[int, int]:
        """The original span covering decoded chars [start, end)."""
        if start >= len(self.starts):
            return original_len, original_len
        lo = self.starts[start]
        hi = self.ends[end - 1] if end > start else lo
        return lo, hi


def _entity(match: re.Match[str]) -> str | None:
    body = match.group(1)
    if body.startswith("#"):
        digits = body[1:].rstrip(";")
        try:
            code = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits)
        except ValueError:
            return None
        return chr(code) if 0 < code < 0x110000 else "\ufffd"
    name = body if body.endswith(";") else body + ";"
    value = html.entities.html5.get(name) or html.entities.html5.get(name.lower())
    if value is None and not body.endswith(";"):
        value = html.entities.html5.get(body)  # legacy names valid without `;` (`&amp`)
    return value


def decoded_view(text: str) -> DecodedView:
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        decoded: str | None = None
        end = i + 1
        if ch == "&" and (m := _ENTITY.match(text, i)):
            decoded = _entity(m)
            end = m.end()
        elif ch == "%" and (m := _PERCENT.match(text, i)):
            decoded = chr(int(m.group(1), 16))
            end = m.end()
        elif ch == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE and text[i + 1] != "\\":
            # A Markdown backslash escape renders as the character itself (`https\://`).
            decoded = text[i + 1]
            end = i + 2
        escaped = decoded is not None
        if decoded is None:
            decoded, end = ch, i + 1
        for piece in decoded:
            if unicodedata.category(piece) == "Cf":
                continue  # zero-width and other invisible format characters
            if escaped and piece in "\t\n\r":
                continue  # an encoded tab or newline: URL parsers drop them (`java&#9;script:`)
            for normal in unicodedata.normalize("NFKC", piece):
                out.append(normal)
                starts.append(i)
                ends.append(end)
        i = end
    return DecodedView("".join(out), starts, ends)


# --- what a link looks like (on the decoded view) --------------------------------------------

_SLASH = r"[/\\]"
# Schemes that run code, embed content or leave the site without any slashes after the colon.
_BARE_SCHEMES = (
    "javascript|vbscript|livescript|data|file|blob|filesystem|mailto|tel|sms|callto|ftp|ftps"
    "|ws|wss|intent|jar|view-source|about|chrome|irc|ircs|news|nntp|git|ssh|sftp|smb|magnet"
)
# Common TLDs (generic and country) that are not also common file extensions (`.md`, `.py`,
# `.sh`, `.js`...), so a bare `portal.example` is caught and `setup.py` is not.
_TLDS = (
    "com|net|org|edu|gov|mil|int|io|co|ai|app|dev|info|biz|xyz|online|site|website|page|link"
    "|click|top|store|shop|cloud|tech|live|me|us|uk|ca|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|ru"
    "|cn|jp|kr|in|au|nz|br|mx|ar|za|eu|tk|ml|ga|cf|gq|ly|gg|to|tv|cc|ws|su|ir|example|test"
    "|local|localhost|invalid|onion|zip|mov"
)
_HOST_CHARS = r"[a-z0-9\-_~%]"
_LABEL = r"[a-z0-9](?:[a-z0-9\-_]{0,62})?"
_TOKEN_END = r"(?:[^\s<>\"'`)\]]*)"

# CommonMark's `(dest "title")`. Written so that no run of spaces is split two ways (a run after
# `](` took time cubic in its length, issue 30): a destination holds no whitespace and is
# followed only by whitespace or `)`, so it is all of its run or empty, and the whitespace
# before a title is all of it (`\s*+`, `++`: possessive); an empty destination's title follows
# the whitespace after `(` (`(?<=\s)`). The matches are those of `\(\s*D(?:\s+T)?\s*\)`.
_TITLE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\))"
MD_LINK = re.compile(
    r"(?P<bang>!?)\[(?P<label>(?:[^\[\]\n]|\[[^\[\]\n]*\]){0,1000})\]"
    r"\(\s*+(?P<dest><[^<>\n]*>|(?:[^\s()]|\([^\s()]*\))++|)"
    rf"(?:(?<=\s){_TITLE}|\s++{_TITLE})?\s*+\)",
    re.I,
)
AUTOLINK = re.compile(r"<(?P<dest>[a-z][a-z0-9+.\-]{1,31}:[^<>\s]*|[^<>\s@]+@[^<>\s@]+)>", re.I)
BARE_LINK = re.compile(
    "|".join(
        (
            # any scheme followed by slashes or backslashes (`HTTPS://`, `http:\\\\`, `x:/\\`)
            rf"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]{{0,31}}\s*:\s*{_SLASH}+{_TOKEN_END}",
            # schemes that need no slashes (`javascript:alert(1)`, `data:text/html,...`)
            rf"(?<![a-z0-9+.\-])(?:{_BARE_SCHEMES})\s*:{_TOKEN_END}",
            # protocol-relative and UNC-style hosts (`//x.example`, `\\\\x.example`, `/\\x`)
            rf"(?<![a-z0-9:/\\]){_SLASH}{{2,}}{_HOST_CHARS}{_TOKEN_END}",
            # `www.` names
            rf"(?<![a-z0-9.\-@])www\d{{0,3}}\.{_LABEL}{_TOKEN_END}",
            # IPv4 addresses, with or without a port and path
            rf"(?<![\w.])(?:\d{{1,3}}\.){{3}}\d{{1,3}}(?::\d{{1,5}})?(?:[/\\?#]{_TOKEN_END})?(?![\w.])",
            # e-mail addresses (GFM renders them as mailto: links)
            rf"(?<![\w.+\-])[\w.+\-]+@{_LABEL}(?:\.{_LABEL})+",
            # bare domains with a path or port (`portal.example/login`, `x.y:8080`)
            rf"(?<![\w.\-@/\\])(?:{_LABEL}\.)+[a-z][a-z0-9\-]{{1,62}}(?::\d{{1,5}})?[/\\?#]{_TOKEN_END}",
            # bare domains with a common TLD (`evil.example`, `portal.com`)
            rf"(?<![\w.\-@/\\])(?:{_LABEL}\.)+(?:{_TLDS})(?::\d{{1,5}})?(?![\w\-]|\.[a-z0-9])",
        )
    ),
    re.I,
)
_FENCE = r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[^\n]*\n(?:.*?\n)??[ \t]{0,3}(?P=fence)[`~]*[ \t]*$"
_SPAN = r"(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)"
CODE = re.compile(rf"(?m){_FENCE}|{_SPAN}", re.S)
# Its two alternatives apart, for the streaming filter (which tries them where CODE would).
CODE_FENCE = re.compile(rf"(?m){_FENCE}", re.S)
CODE_SPAN = re.compile(_SPAN, re.S)
CODE_TAIL = re.compile(r"(?m)^[ \t]{0,3}(?:`{3,}|~{3,})[^\n]*(?:\n|$)", re.S)
TRAILING_PUNCT = ".,;:!?"
