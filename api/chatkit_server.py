"""ChatKit over bookchat's chat jobs: a `ChatKitServer` whose `respond` enqueues the same chat
job as POST /v1/chat and relays that job's event stream as ChatKit thread events. Its ChatKit
`Store`, backed by the history tables, and the per-request context are api/chatkit_store.py.

Decisions (see docs/deployments.md, "ChatKit front end"):

- A ChatKit thread IS a bookchat session: the thread id is the session's UUID as a string, so a
  conversation started in ChatKit can be read at /v1/sessions/{id}/messages and vice versa.
- Thread items ARE history rows. The worker is the only writer of messages (the question and
  the answer, written together when the job finishes); the Store never writes a second copy.
  Item ids are derived from the chat job: ``msg_<job id>_user`` / ``msg_<job id>_assistant``,
  so the ids streamed while a job runs are the ids read back from history afterwards.
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
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ClientEffectEvent,
    FeedbackKind,
    ProgressUpdateEvent,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from pydantic import ValidationError

from api.chatkit_store import ChatKitContext, HistoryStore, citation_annotations, item_id
from api.enqueue import enqueue
from api.errors import ApiError
from shared.job_models import ChatRequest
from shared.jobs import EventType, JobKind
from shared.models import FeedbackRating, MessageRole
from shared.queues import TaskName

__all__ = ["SESSION_EFFECT", "BookchatChatKitServer", "user_text"]

log = logging.getLogger(__name__)

#: The client effect that hands a new thread's session token to the front end.
SESSION_EFFECT = "bookchat.session"
#: How long past the chat task's own time limit the relay keeps waiting for `done`.
_RELAY_MARGIN_S = 30.0


def user_text(item: UserMessageItem) -> str:
    """The question as plain text (tags contribute their visible text)."""
    parts = [
        part.text
        for part in item.content
        if isinstance(part, UserMessageTextContent | UserMessageTagContent)
    ]
    return "\n".join(p for p in parts if p).strip()


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
        state = context.state
        if context.creating:
            yield ClientEffectEvent(
                name=SESSION_EFFECT,
                data={
                    "thread_id": thread.id,
                    "session_token": context.new_session_token,
                },
            )
        await self._forget_retried_question(thread, input_user_message, context)
        try:
            request = ChatRequest(
                message=user_text(input_user_message),
                session_id=uuid.UUID(thread.id),
                selection=input_user_message.quoted_text or None,
                page_url=context.page_url,
            )
        except ValidationError as error:  # the route checked the input already: a last guard
            raise CustomStreamError(str(error.errors()[0]["msg"]), allow_retry=False) from error
        try:
            await enqueue(
                state,
                JobKind.CHAT,
                TaskName.CHAT,
                job_id=context.job_id,
                session_id=thread.id,
                request=request,
            )
        except ApiError as error:
            raise CustomStreamError(error.message, allow_retry=True) from error
        async for event in self._relay(thread, context):
            yield event

    async def _forget_retried_question(
        self, thread: ThreadMetadata, item: UserMessageItem, context: ChatKitContext
    ) -> None:
        """On "retry", the question is already in history; the new job writes it again."""
        if item.id == item_id(context.job_id, MessageRole.USER):
            return
        await self.store.delete_thread_item(thread.id, item.id, context)

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
