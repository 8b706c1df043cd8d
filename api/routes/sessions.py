"""A session's history and feedback on answers."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator, BaseModel, StringConstraints
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from api.deps import (
    HistoryDep,
    SessionTokenDep,
    StateDep,
    check_session_access,
    require_session,
)
from api.errors import ApiError
from api.pending import pending_answers
from api.schemas import ErrorBody, MessageOut
from shared.access_tokens import revoke_session
from shared.errors import ErrorCode
from shared.input_rules import check_plain_text
from shared.models import FeedbackRating, MessageRole

router = APIRouter(tags=["history"])
log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


def _db_unavailable(error: Exception) -> ApiError:
    return ApiError(
        503,
        ErrorCode.DATABASE_UNAVAILABLE,
        "History is unavailable right now; retry shortly.",
        headers={"Retry-After": "5"},
    )


@router.get(
    "/v1/sessions/{session_id}/messages", response_model=list[MessageOut], responses=_ERRORS
)
async def list_messages(
    session_id: Annotated[uuid.UUID, Path()],
    state: StateDep,
    history: HistoryDep,
    token: SessionTokenDep,
) -> list[MessageOut]:
    """The conversation so far, oldest first. A question stored as it was asked whose answer is
    not written yet carries `pending`: its answer so far, and the job's status and event URLs
    to follow the rest (a reader who reloads mid-answer resumes from there)."""
    await check_session_access(state, str(session_id), token)
    try:
        rows = await history.messages(session_id)
        try:
            pending = await pending_answers(state, session_id)
        except RedisError as error:  # the stored conversation still reads without the jobs
            log.warning("session %s: pending answers unreadable: %r", session_id, error)
            pending = {}
    except (SQLAlchemyError, OSError) as error:
        raise _db_unavailable(error) from error
    out = []
    for row in rows:
        message = MessageOut.model_validate(row, from_attributes=True)
        if row.role == MessageRole.USER and row.job_id is not None:
            message.pending = pending.get(row.job_id)
        out.append(message)
    return out


@router.post(
    "/v1/sessions/{session_id}/revoke",
    status_code=204,
    responses={403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def revoke(
    session_id: Annotated[uuid.UUID, Path()], state: StateDep, token: SessionTokenDep
) -> Response:
    """End a session's access: every token of it issued so far (the session token this call
    carries included) and its jobs' stream tokens stop working. History stays stored."""
    await check_session_access(state, str(session_id), token)
    await revoke_session(state.redis, str(session_id), ttl_s=state.settings.session_token_ttl_s)
    return Response(status_code=204)


class FeedbackIn(BaseModel):
    rating: FeedbackRating
    # The bound before the text check, so a long comment is "at most 2000 characters" (on
    # `PlainText | None` pydantic's max_length said "items after validation").
    comment: (
        Annotated[str, StringConstraints(max_length=2000), AfterValidator(check_plain_text)] | None
    ) = None


class FeedbackOut(BaseModel):
    id: uuid.UUID
    message_id: uuid.UUID
    rating: FeedbackRating


@router.post(
    "/v1/messages/{message_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses=_ERRORS,
)
async def post_feedback(
    message_id: Annotated[uuid.UUID, Path()],
    body: FeedbackIn,
    state: StateDep,
    history: HistoryDep,
    token: SessionTokenDep,
) -> FeedbackOut:
    """Thumbs up or down on an answer (with an optional comment). 403 without a valid session
    token; 404 `message_not_found` for the id of anything but an answer of that session (an
    unknown id and another session's message alike, so ids cannot be probed)."""
    session_id = await require_session(state, token)
    try:
        message = await history.message(message_id, session_id=uuid.UUID(session_id))
        if message is None:
            raise ApiError(404, ErrorCode.MESSAGE_NOT_FOUND, "No such message.")
        if message.role != MessageRole.ASSISTANT:
            # Ratings are on answers (the report counts them per answer); the reader's own
            # question is no answer to rate.
            raise ApiError(404, ErrorCode.MESSAGE_NOT_FOUND, "No such answer: rate an answer.")
        [feedback] = await history.add_feedback([message], body.rating, body.comment)
    except (SQLAlchemyError, OSError) as error:
        raise _db_unavailable(error) from error
    return FeedbackOut(id=feedback.id, message_id=message_id, rating=body.rating)
