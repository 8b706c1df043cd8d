"""CORS for the widget: which browser origins may call the API, and a refused preflight that
says which setting would allow it.

- `BOOKCHAT_CORS_ORIGINS` lists the docs sites' origins (JSON list).
- In development (`BOOKCHAT_ENVIRONMENT=development`, the default, and `bookchat dev`) any
  `http(s)://localhost|127.0.0.1|[::1]:<port>` origin is allowed too, so a Docusaurus site
  served locally (`npm run start` / `npm run serve`) can use the widget with no configuration;
  `BOOKCHAT_CORS_ALLOW_LOCALHOST` overrides that either way.
- The middleware is always installed: a preflight from an origin not allowed gets a 400 (not a
  bare 405) and is logged once per origin with the setting to change. Browsers only say "CORS
  error" to the page; the operator learns the cause from this log line.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from shared.settings import Environment, Settings

__all__ = ["LOCALHOST_ORIGINS", "WidgetCORS", "allow_localhost"]

log = logging.getLogger(__name__)

#: Any port of the loopback host names, http or https.
LOCALHOST_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$"
#: Known origins are remembered up to this many, so a flood of forged origins cannot grow it.
_MAX_REMEMBERED = 1000


def allow_localhost(settings: Settings) -> bool:
    if settings.cors_allow_localhost is not None:
        return settings.cors_allow_localhost
    return settings.environment is Environment.DEVELOPMENT


class WidgetCORS(CORSMiddleware):
    """Starlette's CORS middleware set up from settings, logging each refused preflight's
    origin once."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        super().__init__(
            app,
            allow_origins=settings.cors_origins,
            allow_origin_regex=LOCALHOST_ORIGINS if allow_localhost(settings) else None,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Session-Token", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Retry-After", "ETag", "X-Session-Id", "X-Session-Token"],
        )
        self._told: set[str] = set()

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        origin = request_headers.get("origin", "")
        if response.status_code != 200 and origin not in self._told:
            if len(self._told) < _MAX_REMEMBERED:
                self._told.add(origin)
            reason = bytes(response.body).decode(errors="replace")
            if not self.is_allowed_origin(origin=origin):
                hint = (
                    f"to allow it, add it to BOOKCHAT_CORS_ORIGINS, e.g. "
                    f"BOOKCHAT_CORS_ORIGINS='[\"{origin}\"]' (a JSON list; docs/widget.md)"
                )
            else:
                hint = (
                    "the origin is allowed; the method or a requested header is not (the API "
                    "takes GET and POST with Content-Type, X-Session-Token, Idempotency-Key, "
                    "Last-Event-ID)"
                )
            log.warning("CORS preflight from %s refused (%s): %s", origin, reason, hint)
        return response
