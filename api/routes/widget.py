"""The embeddable chat widget and the demo page at `/`.

`/widget.js` (and `/widget/<version>.js`, pinned) is the loader a site includes (static/loader.js:
the launcher, a few KB); on first use it loads the chat from `/widget/<version>/widget.js` and
`/widget/<version>/widget.css`. Scripts are served minified (calmjs.parse: whitespace and
comments dropped, local names shortened), computed once per process on first request."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import HTMLResponse, Response

from api.errors import ApiError
from shared.errors import ErrorCode

__all__ = ["router"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["widget"], include_in_schema=False)

# `/widget.js` may change with any deploy, so browsers re-check it soon (cheaply, by ETag);
# `/widget/<version>.js` never changes, so it is cached for good.
LATEST_CACHE = "public, max-age=300, stale-while-revalidate=86400"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
_VERSION = re.compile(r'var VERSION = "([^"]+)";')
_CSS = "text/css; charset=utf-8"


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    etag: str


@functools.cache
def _asset(name: str) -> StaticAsset:
    """Read once per process, on first request (never at import time); scripts minified."""
    body = (STATIC_DIR / name).read_bytes()
    if name.endswith(".js"):
        body = minify_js(body.decode()).encode()
    return StaticAsset(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def minify_js(source: str) -> str:
    """ES5 source without whitespace and comments, its local names shortened (globals and
    properties kept). Raises calmjs.parse's ECMASyntaxError for a script it cannot parse."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    return str(minify_print(es5(source), obfuscate=True, obfuscate_globals=False))


@functools.cache
def widget_version() -> str:
    """The VERSION line of static/loader.js (widget.js carries the same one)."""
    match = _VERSION.search((STATIC_DIR / "loader.js").read_text())
    if match is None:
        raise RuntimeError('api/static/loader.js has no `var VERSION = "...";` line')
    return match.group(1)


def _serve(
    asset: StaticAsset, media_type: str, cache_control: str, if_none_match: str | None
) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
        # Any site may embed the script (it is public; the API itself enforces CORS).
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }
    if if_none_match and asset.etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=media_type, headers=headers)


IfNoneMatch = Annotated[str | None, Header()]
_JS = "text/javascript; charset=utf-8"


async def _loaded(name: str) -> StaticAsset:
    # The first minification takes a parse (a second or so): off the event loop.
    return await asyncio.to_thread(_asset, name)


def _check_version(version: str) -> None:
    if version != widget_version():
        raise ApiError(
            404,
            ErrorCode.NOT_FOUND,
            f"Widget version {version!r} is not served here; the current one is "
            f"/widget/{widget_version()}.js (or /widget.js for the latest).",
        )


@router.get("/widget.js")
async def widget_latest(if_none_match: IfNoneMatch = None) -> Response:
    """The current widget loader; short cache, revalidated by ETag."""
    return _serve(await _loaded("loader.js"), _JS, LATEST_CACHE, if_none_match)


@router.get("/widget/{version}.js")
async def widget_versioned(version: str, if_none_match: IfNoneMatch = None) -> Response:
    """A pinned widget loader; cached forever."""
    _check_version(version)
    return _serve(await _loaded("loader.js"), _JS, VERSIONED_CACHE, if_none_match)


@router.get("/widget/{version}/widget.js")
async def widget_chat(version: str, if_none_match: IfNoneMatch = None) -> Response:
    """The chat the loader loads on first use; cached forever (the version names it)."""
    _check_version(version)
    return _serve(await _loaded("widget.js"), _JS, VERSIONED_CACHE, if_none_match)


@router.get("/widget/{version}/widget.css")
async def widget_styles(version: str, if_none_match: IfNoneMatch = None) -> Response:
    """The chat's styles (fetched by widget.js, applied as a constructed style sheet)."""
    _check_version(version)
    return _serve(_asset("widget.css"), _CSS, VERSIONED_CACHE, if_none_match)


@router.get("/favicon.ico")
async def favicon(if_none_match: IfNoneMatch = None) -> Response:
    """The demo page's icon (an SVG; browsers accept it under the conventional name)."""
    return _serve(_asset("favicon.svg"), "image/svg+xml", LATEST_CACHE, if_none_match)


@router.get("/", response_class=HTMLResponse)
async def demo_page(if_none_match: IfNoneMatch = None) -> Response:
    """A mock documentation page with the widget, so `bookchat dev` is a working demo."""
    return _serve(_asset("demo.html"), "text/html; charset=utf-8", "no-cache", if_none_match)
