"""Webhooks: a push to the docs repository (GitHub style) re-indexes the configured site."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from api.deps import AppState, StateDep
from api.enqueue import enqueue_ingestion
from api.errors import ApiError
from api.schemas import ErrorBody, JobAccepted
from shared.errors import ErrorCode

__all__ = ["router", "signature_of"]

router = APIRouter(tags=["admin"])

SIGNATURE_PREFIX = "sha256="


def signature_of(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value a sender computes: HMAC-SHA256 of the raw body."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(state: AppState, body: bytes, supplied: str | None) -> None:
    """401 unless the signature matches; compared in constant time. With no secret
    configured nothing is accepted (a hook must never be open by default)."""
    secret = state.settings.webhook_secret
    if secret is None or not supplied or not supplied.startswith(SIGNATURE_PREFIX):
        valid = False
    else:
        expected = signature_of(secret.get_secret_value().encode(), body)
        valid = hmac.compare_digest(expected.encode(), supplied.strip().encode())
    if not valid:
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "A valid X-Hub-Signature-256 (HMAC-SHA256 of the body with "
            "BOOKCHAT_WEBHOOK_SECRET) is required.",
        )


@router.post(
    "/v1/hooks/reindex",
    status_code=202,
    response_model=JobAccepted,
    responses={
        200: {"description": "A ping (GitHub `X-GitHub-Event: ping`): nothing is queued."},
        401: {"model": ErrorBody},
        409: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def reindex_hook(
    request: Request,
    state: StateDep,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[
        str | None,
        Header(
            max_length=100,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="The delivery id (not signed: only echoed in a duplicate's answer)",
        ),
    ] = None,
) -> JobAccepted | JSONResponse:
    """Queue an incremental re-index of the configured site (signed webhook).

    A signed body is handled once: the same body again (a replay, a sender's retry, whatever
    its `X-GitHub-Delivery`, which is not signed) answers 200 `{"status": "duplicate"}` for
    `BOOKCHAT_IDEMPOTENCY_TTL_S`; and re-index requests coalesce (one running, at most one
    waiting)."""
    body = await request.body()
    verify_signature(state, body, x_hub_signature_256)
    if x_github_event == "ping":
        return JSONResponse({"status": "pong"})
    # Keyed by what the signature covers (issue 30): a captured body sent again under new
    # delivery ids used to re-index every time. Two pushes differ in their body (`after`).
    key = f"bookchat:hook:body:{hashlib.sha256(body).hexdigest()}"
    if not await state.redis.set(key, "1", nx=True, ex=state.settings.idempotency_ttl_s):
        return JSONResponse({"status": "duplicate", "delivery": x_github_delivery})
    try:
        return await enqueue_ingestion(state)
    except Exception:
        await state.redis.delete(key)  # not handled: let the sender's retry through
        raise
