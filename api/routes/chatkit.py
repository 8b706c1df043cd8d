"""POST /v1/chatkit: the ChatKit server protocol over bookchat's chat jobs.

Point ChatKit's front end (`useChatKit({ api: { url: ".../v1/chatkit", domainKey } })`) here;
docs/deployments.md shows the whole set-up. The request is checked before the ChatKit SDK sees
it, so bad input, a missing token, rate limits and a full queue are plain HTTP errors with a
stable code rather than a broken stream.

The ChatKit server (`chatkit.server`, and with it the whole Agents SDK and the openai client,
~70 MB of the API's memory) is imported on the first ChatKit request, not at start-up: an API
whose readers never use ChatKit does not carry it (docs/benchmarks.md, API RSS).
"""

from __future__ import annotations

import uuid

from chatkit.store import NotFoundError
from chatkit.types import (
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    ChatKitReq,
    InputTranscribeReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsCustomActionReq,
    ThreadsRetryAfterItemReq,
    ThreadsSyncCustomActionReq,
    UserMessageInput,
)
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from api.chatkit_store import ChatKitContext
from api.deps import (
    SessionTokenDep,
    StateDep,
    check_session_access,
    new_session_token,
    session_of,
)
from api.errors import ApiError
from api.limits import check_backpressure, check_rate_limits
from api.schemas import ErrorBody
from shared.errors import ErrorCode
from shared.input_rules import check_page_url
from shared.job_models import ChatRequest
from shared.jobs import JobStore

__all__ = ["router"]

router = APIRouter(tags=["chatkit"])

_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)
_UNSUPPORTED = (
    AttachmentsCreateReq,
    AttachmentsDeleteReq,
    InputTranscribeReq,
    ThreadsCustomActionReq,
    ThreadsSyncCustomActionReq,
    ThreadsAddClientToolOutputReq,
    ThreadsAddStructuredInputReq,
)


def _parse(raw: bytes) -> ChatKitReq:
    try:
        return _REQUEST.validate_json(raw)
    except ValidationError as error:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"Not a ChatKit request: {error.errors()[0]['msg']}"
        ) from error


def _check_input(user_input: UserMessageInput) -> None:
    """The same limits as POST /v1/chat's body (length, blank, control characters)."""
    if user_input.attachments:
        raise ApiError(
            400, ErrorCode.UNSUPPORTED_OPERATION, "bookchat answers from the site; no attachments."
        )
    text = "\n".join(getattr(part, "text", "") for part in user_input.content).strip()
    try:
        ChatRequest(message=text, selection=user_input.quoted_text or None)
    except ValidationError as error:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"The message is not valid: {error.errors()[0]['msg']}"
        ) from error


def _metadata_page_url(value: object) -> str | None:
    """Request metadata `page_url`, held to the same rule as POST /v1/chat's `page_url`."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError("metadata.page_url must be a string")
        return check_page_url(value)
    except ValueError as error:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"metadata.page_url is not valid: {error}"
        ) from None


@router.post(
    "/v1/chatkit",
    responses={
        200: {
            "description": "ChatKit JSON, or a text/event-stream of ChatKit thread events",
            "content": {"text/event-stream": {}},
        },
        400: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
        503: {"model": ErrorBody, "description": "Queue full or unavailable; see Retry-After"},
    },
)
async def post_chatkit(request: Request, state: StateDep, token: SessionTokenDep) -> Response:
    """The ChatKit server protocol; a thread is a bookchat session (send its X-Session-Token)."""
    # Imported here, once, on the first ChatKit request (see the module's docstring).
    from chatkit.server import NonStreamingResult, StreamingResult

    from api.chatkit_server import BookchatChatKitServer, queue_question

    raw = await request.body()
    parsed = _parse(raw)
    if isinstance(parsed, _UNSUPPORTED):
        raise ApiError(
            400, ErrorCode.UNSUPPORTED_OPERATION, f"bookchat does not support {parsed.type}."
        )
    metadata = parsed.metadata or {}
    page_url = _metadata_page_url(metadata.get("page_url"))
    listed = metadata.get("session_id")
    new_thread_id = str(uuid.uuid4())
    context = ChatKitContext(
        state=state,
        token_session=await session_of(state, token),
        job_id=JobStore.new_id(),
        new_thread_id=new_thread_id,
        new_session_token=new_session_token(state, new_thread_id),
        creating=isinstance(parsed, ThreadsCreateReq),
        page_url=page_url,
        listed_session=listed if isinstance(listed, str) and len(listed) <= 64 else None,
    )
    thread_id: str | None = getattr(parsed.params, "thread_id", None)
    if thread_id is not None:
        await check_session_access(state, thread_id, token)
    if isinstance(parsed, ThreadsCreateReq | ThreadsAddUserMessageReq):
        _check_input(parsed.params.input)
    if isinstance(parsed, ThreadsCreateReq | ThreadsAddUserMessageReq | ThreadsRetryAfterItemReq):
        client_ip = request.client.host if request.client else "unknown"
        await check_rate_limits(state, client_ip=client_ip, session_id=thread_id)
        await check_backpressure(state)

    server = BookchatChatKitServer()
    try:
        # Stored and queued before the first byte of the stream: see queue_question.
        await queue_question(parsed, context)
        result = await server.process(raw, context)
    except NotFoundError as error:
        raise ApiError(404, ErrorCode.NOT_FOUND, str(error) or "Not found.") from error
    except (SQLAlchemyError, OSError) as error:
        raise ApiError(
            503,
            ErrorCode.DATABASE_UNAVAILABLE,
            "History is unavailable right now; retry shortly.",
            headers={"Retry-After": "5"},
        ) from error
    if isinstance(result, NonStreamingResult):
        return Response(content=result.json, media_type="application/json")
    assert isinstance(result, StreamingResult)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if context.creating:
        headers["X-Session-Id"] = context.new_thread_id
        headers["X-Session-Token"] = context.new_session_token
    return StreamingResponse(result, media_type="text/event-stream", headers=headers)
