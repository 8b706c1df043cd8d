"""The link policy: in any text a client sees, only links to the site's own pages survive.

Applied by the worker to the final answer and to every streamed `token` delta before it leaves
the worker (so the widget, ChatKit and any SSE client get the same cleaned text). Usage::

    policy = LinkPolicy.for_site("https://docs.example/book/")
    policy.clean(text)                       # a whole answer (code spans/blocks left as written)
    stream = policy.stream()                 # streamed deltas
    safe = stream.feed(delta) ... + stream.flush()

What counts as a link is decided on a *decoded* view of the text, the way a Markdown renderer or
a browser would read it: HTML entities (`&#58;`, `&colon;`), percent escapes (`%2F`), Markdown
backslash escapes (`\\:`), NFKC compatibility forms (full-width `：／`) and invisible format
characters (zero-width spaces) are all decoded before matching, case-insensitively. Then:

- `[label](dest)` / `![alt](dest)`: kept when `dest` is allowed, else only `label` / `alt` stays;
- `<scheme:...>` autolinks and e-mail addresses: kept when allowed, else removed;
- anything a renderer could turn into a link to somewhere else is replaced by `(link removed)`:
  `scheme://…` in any case, `scheme:\\\\…`, `//host`, `\\\\host` (and mixed slashes),
  `javascript:`/`data:`/`vbscript:`/`file:`/`mailto:`… URIs, `www.` names, bare domains with a
  path or port (`portal.example/login`), bare domains with a common TLD, IPv4 addresses.

Allowed: an absolute http(s) URL whose host (and port) equals an allowed site's and whose path
is under that site's base path, with no user-info, backslash, whitespace or control character;
or a root-relative path (`/docs/x`, never `//` or `/\\`), which cannot leave the host it is read
on. An allowed destination is re-written in its decoded, canonical form, so what a renderer
decodes is exactly what was checked.

Rules' source: the tricks reported in issue 16 (mixed case schemes, backslashes, images,
entity/percent encoding, `javascript:`/`data:`, autolinks, bare domains) and the CommonMark /
GFM rules for links, autolinks, entities and backslash escapes.

The decoded view and the patterns of what a link looks like are shared/link_syntax.py; this
module decides which destinations stay and rewrites the text (whole, or streamed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from shared.link_syntax import (
    AUTOLINK,
    BARE_LINK,
    CODE,
    CODE_FENCE,
    CODE_SPAN,
    CODE_TAIL,
    MD_LINK,
    TRAILING_PUNCT,
    decoded_view,
)

__all__ = ["REMOVED", "LinkPolicy", "LinkStream"]

#: What stands in for a removed bare URL.
REMOVED = "(link removed)"


@dataclass(frozen=True, slots=True)
class _Site:
    scheme_host: tuple[str, int | None]  # (hostname, port or None for the scheme's default)
    base_path: str  # "/book/"


def _default_port(scheme: str, port: int | None) -> int | None:
    return None if port in (None, {"http": 80, "https": 443}.get(scheme)) else port


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Which link destinations survive; see the module docstring. Immutable and cheap."""

    sites: tuple[_Site, ...] = ()
    allow_root_relative: bool = True

    @classmethod
    def for_site(cls, *site_urls: str | None, extra: Iterable[str] = ()) -> LinkPolicy:
        """Allow links under each absolute http(s) `site_urls` (e.g. `https://x.example/book/`,
        the site's url + baseUrl) and under the origin of each of `extra` (e.g. the URLs of the
        passages retrieved for this answer: they come from the site's own index)."""
        sites: list[_Site] = []
        for url, whole_origin in [*((u, False) for u in site_urls), *((u, True) for u in extra)]:
            if not url:
                continue
            parts = urlsplit(url.strip())
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                continue
            try:
                port = _default_port(parts.scheme.lower(), parts.port)
            except ValueError:
                continue
            base = "/" if whole_origin else "/" + parts.path.strip("/") + "/"
            site = _Site((parts.hostname.lower(), port), base.replace("//", "/"))
            if site not in sites:
                sites.append(site)
        return cls(tuple(sites))

    # -- decisions ---------------------------------------------------------------------------

    def allowed(self, destination: str) -> str | None:
        """The canonical form of `destination` (already decoded) when it may stay, else None."""
        dest = destination.strip()
        if dest.startswith("<") and dest.endswith(">"):
            dest = dest[1:-1].strip()
        if not dest or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in dest):
            return None
        if "\\" in dest:
            return None
        if self.allow_root_relative and dest.startswith("/") and not dest.startswith("//"):
            return dest
        try:
            parts = urlsplit(dest)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return None
        key = (parts.hostname.lower(), _default_port(scheme, port))
        path = parts.path or "/"
        for site in self.sites:
            if site.scheme_host == key and (path + "/").startswith(site.base_path):
                netloc = parts.hostname.lower() + (f":{port}" if port else "")
                return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))
        return None

    # -- cleaning ----------------------------------------------------------------------------

    def clean(self, text: str, *, keep_code: bool = True) -> str:
        """`text` with every link that is not to the site's own pages removed.

        With `keep_code`, Markdown code spans and fenced blocks are left as written (a renderer
        shows them as text, and examples such as `http://localhost:3000` belong there)."""
        if not text:
            return text
        if not keep_code:
            return self._clean_prose(text)
        out: list[str] = []
        last = 0
        for match in CODE.finditer(text):
            out.append(self._clean_prose(text[last : match.start()]))
            out.append(match.group(0))
            last = match.end()
        tail = text[last:]
        fence = CODE_TAIL.search(tail)
        if fence is not None:  # an unclosed fence: code to the end, as Markdown reads it
            out.append(self._clean_prose(tail[: fence.start()]))
            out.append(tail[fence.start() :])
        else:
            out.append(self._clean_prose(tail))
        return "".join(out)

    def stream(self) -> LinkStream:
        """A filter for text that arrives in pieces (streamed deltas)."""
        return LinkStream(self)

    def _clean_prose(self, text: str) -> str:
        if not text:
            return text
        # Fast path: nothing that could start a link.
        if not re.search(r"[:/\\.@&%<\[]|[\uff00-\uffef]", text):
            return text
        view = decoded_view(text)
        decoded = view.text
        pieces: list[tuple[int, int, str]] = []  # (original start, end, replacement)
        taken: list[tuple[int, int]] = []  # decoded spans already handled

        def overlaps(start: int, end: int) -> bool:
            return any(start < b and a < end for a, b in taken)

        for match in MD_LINK.finditer(decoded):
            dest = match.group("dest")
            keep = self.allowed(dest)
            label = match.group("label")
            if keep is not None:
                replacement = f"{match.group('bang')}[{self._clean_prose(label)}]({keep})"
            else:
                replacement = self._clean_prose(label)
            taken.append(match.span())
            pieces.append((*view.span(*match.span(), len(text)), replacement))
        for match in AUTOLINK.finditer(decoded):
            if overlaps(*match.span()):
                continue
            keep = self.allowed(match.group("dest"))
            taken.append(match.span())
            pieces.append((*view.span(*match.span(), len(text)), f"<{keep}>" if keep else REMOVED))
        for match in BARE_LINK.finditer(decoded):
            start, end = match.span()
            while end > start and decoded[end - 1] in TRAILING_PUNCT:
                end -= 1  # "see https://x.example." keeps its full stop
            if end <= start or overlaps(start, end):
                continue
            taken.append((start, end))
            keep = self.allowed(decoded[start:end])
            pieces.append((*view.span(start, end, len(text)), keep or REMOVED))
        if not pieces:
            return text
        pieces.sort()
        out: list[str] = []
        last = 0
        for start, end, replacement in pieces:
            if start < last:
                continue
            out.append(text[last:start])
            out.append(replacement)
            last = end
        out.append(text[last:])
        return "".join(out)


#: Held text is let out anyway past this many characters (a label that never closes).
_MAX_HOLD = 2000

# Where a code span or fence could start (as `CODE` reads the text): a backtick, or a line that
# opens with up to three spaces and a backtick or tilde (or has nothing more yet).
_CODE_START = re.compile(r"`|^[ \t]{0,3}(?:[`~]|\Z)", re.M)
# The start of a fence opener, complete or still growing at the end of the text.
_FENCE_OPENER = re.compile(r"[ \t]{0,3}(?:`{3,}|~{3,}|`{0,2}\Z|~{0,2}\Z)")
_WAIT = -1


@dataclass(slots=True)
class LinkStream:
    """Filters text arriving in pieces: `feed` returns what may be shown now, `flush` the rest.

    The pieces returned join to exactly `policy.clean(whole text)`: code spans and fences are
    found as `clean` finds them on the whole text (a piece is held while a backtick or fence
    could still open a code span, until it closes or the text ends) and let out as written;
    prose is cut only where no link could span the cut (at whitespace before a letter or digit,
    outside an unfinished `[label]`, `](destination)` or `<autolink>`, on the decoded view), so
    a link or URL split across deltas is always judged whole."""

    policy: LinkPolicy
    _text: str = field(default="")  # everything fed since the start (or the last reset)
    _done: int = 0  # how much of `_text` has been let out
    _code_end: int = 0  # the end of the last code span or fence (where `clean`'s tail starts)

    def feed(self, delta: str) -> str:
        self._text += delta
        return self._advance(final=False)

    def flush(self) -> str:
        rest = self._advance(final=True)
        self.reset()
        return rest

    def reset(self) -> None:
        self._text, self._done, self._code_end = "", 0, 0

    def _advance(self, *, final: bool) -> str:
        text, n = self._text, len(self._text)
        prose = self.policy._clean_prose
        out: list[str] = []
        done = scan = self._done
        limit = n
        while (start := _CODE_START.search(text, scan)) is not None:
            c = start.start()
            end = _code_at(text, c, final=final)
            if end == _WAIT:
                limit = c
                break
            if end is None:
                if c >= n:
                    break
                scan = c + 1
                continue
            out += (prose(text[done:c]), text[c:end])
            done = scan = self._code_end = end
        if final:
            # `clean` reads an unclosed fence in the tail (after the last code) as code to the end.
            fence = CODE_TAIL.search(text[self._code_end :])
            split = n if fence is None else max(done, self._code_end + fence.start())
            out += (prose(text[done:split]), text[split:])
            self._done = n
            return "".join(out)
        if done == self._code_end and _FENCE_OPENER.match(text, done):
            limit = done  # `clean`'s tail starts here, and could open with a fence
        cut = done + _safe_cut(text[done:limit])
        out.append(prose(text[done:cut]))
        self._done = cut
        return "".join(out)


def _code_at(text: str, c: int, *, final: bool) -> int | None:
    """Where the code span or fence `CODE` would match at `c` ends; None: none starts there,
    whatever follows; `_WAIT`: that depends on text not yet seen (never when `final`)."""
    n = len(text)
    if c == 0 or text[c - 1] == "\n":
        if (match := CODE_FENCE.match(text, c)) is not None:
            return match.end() if final or match.end() < n else _WAIT
        if not final and _FENCE_OPENER.match(text, c):
            return _WAIT  # a fence opened (or opening) and not closed yet
    if c < n and text[c] == "`":
        if (match := CODE_SPAN.match(text, c)) is not None:
            return match.end() if final or match.end() < n else _WAIT
        return None if final else _WAIT
    return None


def _safe_cut(text: str) -> int:
    """The end of the longest prefix of `text` (prose) that no link can span: it ends in
    whitespace followed by a letter or digit (so no `scheme :` or `: //` spans it), outside an
    unfinished `[label]`, `](destination "title")` or `<autolink>`, all read on the decoded
    view as the link patterns read it."""
    view = decoded_view(text)
    decoded = view.text
    depth = dest = 0
    angle = False
    quote = previous = ""
    cut = any_space = 0
    for i, ch in enumerate(decoded):
        if i and previous.isspace():
            any_space = i
            if ch.isalnum() and not (depth or dest or angle):
                cut = i
        if ch == "\n":
            depth, angle = 0, False  # a label or autolink never spans lines; a destination may
        if ch == "<":
            angle = True
        elif angle and (ch == ">" or ch.isspace()):
            angle = False
        if dest:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'" and previous.isspace():
                quote = ch  # a link title, which may hold spaces and parentheses
            elif ch == "(":
                dest += 1
            elif ch == ")":
                dest -= 1
        elif depth:
            depth += {"[": 1, "]": -1}.get(ch, 0)
        elif ch == "[":
            depth = 1
        elif ch == "(" and previous == "]":
            dest = 1
        previous = ch
    raw_cut = view.starts[cut] if cut else 0
    if len(text) - raw_cut > _MAX_HOLD:
        # Never hold for ever: cut at the last whitespace (a URL has none), else anywhere.
        return view.starts[any_space] if any_space > cut else len(text)
    return raw_cut
