"""POST /v1/chat: accept a reader's question as a job."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import SessionTokenDep, StateDep, check_session_access
from api.enqueue import enqueue, job_urls
from api.schemas import ChatAccepted, ChatRequest, ErrorBody
from shared.jobs import JobKind
from shared.queues import TaskName
from shared.tokens import session_token

router = APIRouter(tags=["chat"])


@router.post(
    "/v1/chat",
    status_code=202,
    response_model=ChatAccepted,
    responses={
        400: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def post_chat(body: ChatRequest, state: StateDep, token: SessionTokenDep) -> ChatAccepted:
    """Queue a question; follow the returned status_url or events_url for the answer."""
    if body.session_id is not None:
        session_id = str(body.session_id)
        check_session_access(state, session_id, token)
    else:
        session_id = str(uuid.uuid4())
    access = session_token(state.secret, session_id)
    job = await enqueue(
        state,
        JobKind.CHAT,
        TaskName.CHAT,
        session_id=session_id,
        request={
            "message": body.message,
            "session_id": session_id,
            "selection": body.selection,
            "page_url": body.page_url,
        },
    )
    status_url, events_url = job_urls(state, job.id, access)
    return ChatAccepted(
        job_id=job.id,
        session_id=session_id,
        session_token=access,
        status_url=status_url,
        events_url=events_url,
    )
