"""Webhooks: a push to the docs repository (GitHub style) re-indexes the configured site.

With the site from git (`BOOKCHAT_SITE_REPO`), only a `push` to that repository and to the
indexed ref (`BOOKCHAT_SITE_REF`, else the repository's default branch as the payload names it)
queues an ingestion; any other delivery answers 200 `{"status": "ignored", "reason"}` and queues
nothing. Pushes that arrive while an ingestion runs coalesce into one pending job, which
fetches the newest commit when it starts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from api.deps import AppState, StateDep
from api.enqueue import enqueue_ingestion
from api.errors import ApiError
from api.schemas import ErrorBody, JobAccepted
from shared.errors import ErrorCode
from shared.index_state import indexed_commit
from shared.repo_url import repo_identity
from shared.settings import Settings

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


_REPOSITORY_URLS = ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url")


def ignored_reason(
    settings: Settings, event: str | None, body: bytes, indexed_ref: str | None = None
) -> str | None:
    """Why a signed delivery should queue nothing for the configured repository, or None.

    Without `BOOKCHAT_SITE_REPO` every delivery queues (the folder's owner decides what a push
    means). Otherwise only a `push` (or an unnamed event) to the configured repository and ref:
    `BOOKCHAT_SITE_REF`, else the payload's `repository.default_branch`, else the branch the
    last ingestion found the remote's HEAD naming (`indexed_ref`).
    """
    if settings.site_repo is None:
        return None
    if event is not None and event != "push":
        return f"event {event!r} is not a push"
    try:
        payload: Any = json.loads(body) if body.strip() else {}
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not payload:
        return None if event is None else "the push payload is not JSON"
    repository = payload.get("repository")
    repository = repository if isinstance(repository, dict) else {}
    wanted = repo_identity(settings.site_repo.get_secret_value())
    named = {repo_identity(v) for k in _REPOSITORY_URLS if isinstance(v := repository.get(k), str)}
    full_name = repository.get("full_name")
    if named:
        if wanted not in named:
            return "a push to another repository"
    elif isinstance(full_name, str) and not wanted.endswith("/" + full_name.lower()):
        return "a push to another repository"
    ref = payload.get("ref")
    branch = settings.site_ref or repository.get("default_branch") or indexed_ref
    if isinstance(ref, str) and isinstance(branch, str) and branch not in ("", "HEAD"):
        short = branch.removeprefix("refs/heads/").removeprefix("refs/tags/")
        if ref not in {f"refs/heads/{short}", f"refs/tags/{short}", branch}:
            return f"a push to {ref}, not to {short}"
    return None


@router.post(
    "/v1/hooks/reindex",
    status_code=202,
    response_model=JobAccepted,
    responses={
        200: {
            "description": "A ping, a replayed delivery, or (site from git) a push to another "
            "branch or repository: nothing is queued."
        },
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
    waiting). With the site from git, a push to another branch or repository answers 200
    `{"status": "ignored"}`."""
    body = await request.body()
    verify_signature(state, body, x_hub_signature_256)
    if x_github_event == "ping":
        return JSONResponse({"status": "pong"})
    indexed_ref = None
    if state.settings.site_repo is not None:
        _, indexed_ref = await indexed_commit(state.redis, state.settings.site_name)
    reason = ignored_reason(state.settings, x_github_event, body, indexed_ref)
    if reason is not None:
        return JSONResponse({"status": "ignored", "reason": reason})
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
