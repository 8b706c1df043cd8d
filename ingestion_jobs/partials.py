"""Inline the Markdown partials an MDX page imports, so their text is indexed on that page.

Docusaurus renders ``import Proxy from './_partials/_proxy.mdx';`` + ``<Proxy />`` as the
partial's content in place: its text and headings are on the importing page (each partial is
compiled on its own, so its heading ids come from a slugger of its own). Files starting with
``_`` are not pages themselves, so without this their text would be indexed nowhere.

This module only rewrites text: ``expand_partials`` replaces each ``<Name />`` (or
``<Name></Name>``) of a ``.md``/``.mdx`` default import by what ``render`` makes of the file
that ``include`` returns. The caller owns the I/O and the recursion limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["IMPORT", "ExpansionTooLarge", "expand_partials"]


class ExpansionTooLarge(ValueError):
    """A page with its partials inlined would exceed the page size limit."""


# An ESM default import of a Markdown file, on one line (as MDX writes them).
IMPORT = re.compile(
    r"^import\s+(?P<name>[A-Za-z_$][\w$]*)\s+from\s+(?P<q>['\"])(?P<spec>[^'\"]+\.mdx?)(?P=q)"
    r"\s*;?\s*$",
    re.MULTILINE,
)


def expand_partials(
    body: str,
    include: Callable[[str], str | None],
    render: Callable[[str, str], str],
    *,
    max_chars: int | None = None,
) -> str:
    """``body`` with each imported partial's component replaced by its rendered content.

    ``include(spec)`` returns the partial's raw text (None: not found; its tag is then left for
    the MDX cleanup to drop). ``render(spec, raw)`` turns that text into Markdown to insert.
    Raises ExpansionTooLarge before the result would exceed ``max_chars`` (issue 30: a partial
    used ten times in a partial used ten times... made 834 bytes of files 29 MB of text).
    """
    rendered: dict[str, str] = {}
    for match in IMPORT.finditer(body):
        raw = include(match.group("spec"))
        if raw is not None:
            rendered[match.group("name")] = render(match.group("spec"), raw)
    for name, text in rendered.items():
        tag = re.compile(rf"<{re.escape(name)}(?:\s[^<>]*)?(?:/>|>\s*</{re.escape(name)}>)")
        uses = sum(1 for _ in tag.finditer(body))
        if max_chars is not None and len(body) + uses * (len(text) + 4) > max_chars:
            raise ExpansionTooLarge(
                f"with its partials inlined ({name} {uses} times) the page exceeds "
                f"{max_chars} characters"
            )
        body = tag.sub("\n\n" + text.replace("\\", "\\\\") + "\n\n", body)
    return body
