"""ChatKit over bookchat's chat jobs: the route queues the same chat job as POST /v1/chat
(`queue_question`, before the SDK streams anything) and the `ChatKitServer`'s `respond` relays
that job's event stream as ChatKit thread events. Its ChatKit `Store`, backed by the history
tables, and the per-request context are api/chatkit_store.py.

Decisions (see docs/deployments.md, "ChatKit front end"):

- A ChatKit thread IS a bookchat session: the thread id is the session's UUID as a string, so a
  conversation started in ChatKit can be read at /v1/sessions/{id}/messages and vice versa.
- Thread items ARE history rows. The question is stored as it is queued (api/enqueue.py), the
  answer by the worker when the job ends, whether or not the stream is still open; the Store
  never writes a second copy. Item ids are derived from the chat job: ``msg_<job id>_user`` /
  ``msg_<job id>_assistant``, so the ids streamed while a job runs are the ids read back from
  history afterwards. A thread loaded while an answer runs shows the question and the answer
  so far (api/pending.py).
- A retry (`threads.retry_after_item`, on a question) queues the question again; the exchange
  retried, and what followed it, are replaced only when the retry is answered, so a failed
  retry erases nothing.
- Authorization: every request that names a thread needs that session's token in the
  `X-Session-Token` header. A new thread's token reaches the client as the client effect
  ``bookchat.session`` (``{thread_id, session_token}``) at the start of the stream, and as the
  response headers `X-Session-Id` / `X-Session-Token`.
- What the history tables do not hold is not offered: attachments (refused with
  `unsupported_operation`), thread titles (the first question stands in; a rename is answered
  but not kept), widget actions and client tools.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ChatKitReq,
    ClientEffectEvent,
    FeedbackKind,
    ProgressUpdateEvent,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from pydantic import ValidationError

from api.chatkit_store import ChatKitContext, HistoryStore, citation_annotations, item_id
from api.enqueue import enqueue_chat
from api.errors import ApiError
from shared.errors import ErrorCode
from shared.job_models import ChatJobRequest
from shared.jobs import EventType
from shared.models import FeedbackRating, Message, MessageRole

__all__ = ["SESSION_EFFECT", "BookchatChatKitServer", "queue_question", "user_text"]

log = logging.getLogger(__name__)

#: The client effect that hands a new thread's session token to the front end.
SESSION_EFFECT = "bookchat.session"
#: How long past the chat task's own time limit the relay keeps waiting for `done`.
_RELAY_MARGIN_S = 30.0


def user_text(item: UserMessageItem | UserMessageInput) -> str:
    """The question as plain text (tags contribute their visible text)."""
    parts = [
        part.text
        for part in item.content
        if isinstance(part, UserMessageTextContent | UserMessageTagContent)
    ]
    return "\n".join(p for p in parts if p).strip()


async def queue_question(request: ChatKitReq, context: ChatKitContext) -> None:
    """Store the question and queue its chat job (`enqueue_chat`) for a request that asks one
    (`threads.create`, `threads.add_user_message`, `threads.retry_after_item`), before the
    ChatKit SDK streams a single event: a client that reloads or navigates away at once still
    finds its question in the thread, and the answer is written whether or not anyone listens.

    A retry asks the question of `item_id` again; its exchange (and what followed it) stays
    until the retry is answered (`History.record(replaces_job=)`). Raises ApiError: 404
    `message_not_found` when `item_id` is not a question of the thread, 503 when the queue or
    the history is unavailable."""
    state = context.state
    retry_of: uuid.UUID | None = None
    if isinstance(request, ThreadsCreateReq):
        thread_id, text = context.new_thread_id, user_text(request.params.input)
        selection = request.params.input.quoted_text or None
    elif isinstance(request, ThreadsAddUserMessageReq):
        thread_id, text = request.params.thread_id, user_text(request.params.input)
        selection = request.params.input.quoted_text or None
    elif isinstance(request, ThreadsRetryAfterItemReq):
        thread_id = request.params.thread_id
        asked = await _retried_question(request.params.item_id, thread_id, context)
        retry_of, text, selection = asked.job_id, asked.content, asked.selection
        context.retrying = True
    else:
        return
    try:
        question = ChatJobRequest(
            message=text,
            session_id=uuid.UUID(thread_id),
            selection=selection,
            page_url=context.page_url,
            retry_of=retry_of,
        )
    except ValidationError as error:  # the route checked new input; a retried one is stored
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"The message is not valid: {error.errors()[0]['msg']}"
        ) from error
    await enqueue_chat(state, question, job_id=context.job_id)
    context.queued = True


async def _retried_question(item: str, thread_id: str, context: ChatKitContext) -> Message:
    store = HistoryStore()
    session_id = store.authorize(thread_id, context)
    try:
        row = await store.find_message(session_id, item, context)
    except NotFoundError:
        row = None
    if row is None or row.role != MessageRole.USER or row.job_id is None:
        raise ApiError(
            404,
            ErrorCode.MESSAGE_NOT_FOUND,
            "threads.retry_after_item names a question (a user message) of this thread.",
        )
    if not row.content:  # BOOKCHAT_HISTORY_STORE_QUESTION_TEXT=false: the text was not kept
        raise ApiError(
            409,
            ErrorCode.UNSUPPORTED_OPERATION,
            "This question's text is not stored (history_store_question_text), so it cannot "
            "be asked again; ask it anew.",
        )
    return row


class BookchatChatKitServer(ChatKitServer[ChatKitContext]):
    """Answers through the chat queue: never runs the agent in the request."""

    def __init__(self) -> None:
        super().__init__(HistoryStore())

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input_user_message is None:
            return
        if not context.queued:  # the route queues every question first (`queue_question`)
            raise CustomStreamError("The question was not queued.", allow_retry=True)
        if context.creating:
            yield ClientEffectEvent(
                name=SESSION_EFFECT,
                data={
                    "thread_id": thread.id,
                    "session_token": context.new_session_token,
                },
            )
        async for event in self._relay(thread, context):
            yield event

    async def _relay(
        self, thread: ThreadMetadata, context: ChatKitContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The chat job's events as ChatKit events: tokens stream into an assistant item,
        `done` replaces it with the verified answer and its sources."""
        jobs = context.state.jobs
        answer_id = item_id(context.job_id, MessageRole.ASSISTANT)
        yield ThreadItemAddedEvent(
            item=AssistantMessageItem(
                id=answer_id, thread_id=thread.id, created_at=datetime.now(UTC), content=[]
            )
        )
        yield ThreadItemUpdatedEvent(
            item_id=answer_id,
            update=AssistantMessageContentPartAdded(
                content_index=0, content=AssistantMessageContent(text="")
            ),
        )
        timeout_s = context.state.settings.chat_task_time_limit_s + _RELAY_MARGIN_S
        async for event in jobs.follow(context.job_id, timeout_s=timeout_s):
            if event.type is EventType.STATUS and event.data.get("status") == "running":
                yield ProgressUpdateEvent(icon="search", text="Searching the documentation")
            elif event.type is EventType.TOKEN:
                yield ThreadItemUpdatedEvent(
                    item_id=answer_id,
                    update=AssistantMessageContentPartTextDelta(
                        content_index=0, delta=str(event.data.get("delta", ""))
                    ),
                )
            elif event.type is EventType.DONE:
                yield ThreadItemDoneEvent(item=_answer_item(answer_id, thread, event.data))
                return
            elif event.type is EventType.ERROR:
                yield ThreadItemRemovedEvent(item_id=answer_id)
                raise CustomStreamError(
                    str(event.data.get("message") or "The answer failed."), allow_retry=True
                )
        raise CustomStreamError(
            "The answer is taking too long; it will appear in this conversation when ready.",
            allow_retry=False,
        )

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: ChatKitContext,
    ) -> None:
        """Thumbs on answers, stored like POST /v1/messages/{id}/feedback."""
        store = self.store
        assert isinstance(store, HistoryStore)
        sid = store.authorize(thread_id, context)
        rating = FeedbackRating.UP if feedback == "positive" else FeedbackRating.DOWN
        rows = [await store.find_message(sid, value, context) for value in item_ids]
        answers = [row for row in rows if row.role == MessageRole.ASSISTANT]
        await context.state.history.add_feedback(answers, rating)


def _answer_item(answer_id: str, thread: ThreadMetadata, result: dict[str, Any]) -> ThreadItem:
    return AssistantMessageItem(
        id=answer_id,
        thread_id=thread.id,
        created_at=datetime.now(UTC),
        content=[
            AssistantMessageContent(
                text=str(result.get("answer") or ""),
                annotations=citation_annotations(list(result.get("citations") or [])),
            )
        ],
    )
