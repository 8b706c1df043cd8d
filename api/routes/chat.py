"""POST /v1/chat: accept a reader's question as a job."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import (
    AppState,
    SessionTokenDep,
    StateDep,
    check_session_access,
    new_session_token,
)
from api.enqueue import enqueue_chat, job_urls
from api.errors import ApiError
from api.limits import (
    check_backpressure,
    check_rate_limits,
    claim_idempotency_key,
    release_key,
)
from api.schemas import ChatAccepted, ErrorBody
from shared.job_models import ChatJobRequest, ChatRequest
from shared.jobs import JobStore

router = APIRouter(tags=["chat"])


def _accepted(state: AppState, job_id: str, session_id: str, created_at: float) -> ChatAccepted:
    """The 202 body. Its tokens are issued as of the job's creation, so a retry with the same
    Idempotency-Key gets the very same body."""
    access = new_session_token(state, session_id, issued_at=created_at)
    status_url, events_url = job_urls(state, job_id, created_at)
    return ChatAccepted(
        job_id=job_id,
        session_id=session_id,
        session_token=access,
        status_url=status_url,
        events_url=events_url,
    )


@router.post(
    "/v1/chat",
    status_code=202,
    response_model=ChatAccepted,
    responses={
        400: {"model": ErrorBody},
        403: {"model": ErrorBody},
        413: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
        503: {"model": ErrorBody, "description": "Queue full or unavailable; see Retry-After"},
    },
)
async def post_chat(
    body: ChatRequest,
    request: Request,
    state: StateDep,
    token: SessionTokenDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Retrying with the same key returns the same job"),
    ] = None,
) -> ChatAccepted:
    """Queue a question; follow the returned status_url or events_url for the answer."""
    if body.session_id is not None:
        session_id = str(body.session_id)
        await check_session_access(state, session_id, token)
    else:
        session_id = str(uuid.uuid4())
    client_ip = request.client.host if request.client else "unknown"
    job_id = JobStore.new_id()
    scope = f"{client_ip}|{body.session_id or ''}"
    if idempotency_key:
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:32]
        earlier = await claim_idempotency_key(
            state,
            scope=scope,
            key=idempotency_key,
            job_id=job_id,
            session_id=session_id,
            fingerprint=fingerprint,
            claimed_at=time.time(),
        )
        if earlier is not None:
            earlier_id, earlier_session, claimed_at = earlier
            earlier_job = await state.jobs.get(earlier_id)
            # As of the first acceptance, never now: a replay must not mint a token newer than
            # a revocation of the session (the job gone, its claim time stands in).
            created = earlier_job.created_at if earlier_job else claimed_at
            return _accepted(state, earlier_id, earlier_session, created)
    try:
        await check_rate_limits(state, client_ip=client_ip, session_id=str(body.session_id or ""))
        await check_backpressure(state)
        asked = ChatJobRequest.model_validate({**body.model_dump(), "session_id": session_id})
        job = await enqueue_chat(state, asked, job_id=job_id)
    except ApiError:
        if idempotency_key:
            await release_key(state, scope=scope, key=idempotency_key)
        raise
    return _accepted(state, job.id, session_id, job.created_at)
