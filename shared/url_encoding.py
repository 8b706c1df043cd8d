"""Percent-encoding of the URLs bookchat emits, as the built site serves them.

What JavaScript's ``encodeURI`` leaves as is, as a Docusaurus build's ``sitemap.xml`` writes a
page's URL (checked by the conformance suite, fixture ``heading-rules``: ``release notes`` ->
``release%20notes``, ``über`` -> ``%C3%BCber``, ``what's`` kept), less ``?`` and ``#`` in a path,
where they would start a query or a fragment. Used for every citation URL (ingestion_jobs) and
for the page keys a reader's ``page_url`` is matched on (shared/vectorstore).
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["encode_fragment", "encode_url_path"]

_PATH_SAFE = "/;,:@&=+$!*'()"
_FRAGMENT_SAFE = _PATH_SAFE + "?"


def encode_url_path(path: str) -> str:
    """A URL (or its path) percent-encoded as a browser sends it: ``/docs/über uns`` ->
    ``/docs/%C3%BCber%20uns``, so that a client rendering ``[title](url)`` gets a working link.
    A ``%`` is encoded too: decode first what may already be encoded."""
    return quote(path, safe=_PATH_SAFE)


def encode_fragment(anchor: str) -> str:
    """A heading id as a URL fragment: ``größe`` -> ``gr%C3%B6%C3%9Fe`` (the page's element id
    stays ``größe``; browsers decode the fragment before looking the id up)."""
    return quote(anchor, safe=_FRAGMENT_SAFE)
