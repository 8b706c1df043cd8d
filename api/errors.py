"""Every error leaves the API as JSON `{code, message}` with a stable code; bad input is 4xx."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import BookchatError, ErrorCode

__all__ = ["ApiError", "install_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(BookchatError):
    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.headers = headers


def _error(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def _validation_code(errors: list[Any]) -> tuple[int, ErrorCode, str]:
    for error in errors:
        if error.get("type") == "json_invalid":
            ctx = str(error.get("ctx", {}).get("error", ""))
            if "utf-8" in ctx.lower() or "unicode" in ctx.lower():
                return 400, ErrorCode.INVALID_ENCODING, "The body is not valid UTF-8."
            return 400, ErrorCode.MALFORMED_JSON, "The body is not valid JSON."
    return 422, ErrorCode.VALIDATION_ERROR, "The request is not valid; see details."


def _json_safe(errors: list[Any]) -> list[dict[str, Any]]:
    safe = []
    for error in errors:
        safe.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return safe


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        status, code, message = _validation_code(errors)
        return _error(status, code, message, _json_safe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI could not decode the body at all (it never reached JSON parsing).
            try:
                (await request.body()).decode("utf-8")
            except UnicodeDecodeError:
                return _error(400, ErrorCode.INVALID_ENCODING, "The body is not valid UTF-8.")
            return _error(400, ErrorCode.MALFORMED_JSON, "The body could not be parsed.")
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        if exc.status_code >= 500:
            code = ErrorCode.INTERNAL_ERROR
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> JSONResponse:
        # Job state, events, rate limits and idempotency keys all live in Redis: while it is
        # down (a restart, a failover) every route that needs it is unavailable, not broken.
        log.error("redis unavailable on %s %s: %r", request.method, request.url.path, exc)
        return _error(
            503,
            ErrorCode.QUEUE_UNAVAILABLE,
            "The job queue is unavailable; retry shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, ErrorCode.INTERNAL_ERROR, "Something went wrong on our side.")
