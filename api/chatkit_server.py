"""ChatKit over bookchat's chat jobs: a `ChatKitServer` whose `respond` enqueues the same chat
job as POST /v1/chat and relays that job's event stream as ChatKit thread events, and a ChatKit
`Store` backed by the history tables.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer
from chatkit.store import NotFoundError, Store, StoreItemType, default_generate_id
from chatkit.types import (
    Annotation as ChatKitAnnotation,
)
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    Attachment,
    ClientEffectEvent,
    FeedbackKind,
    InferenceOptions,
    Page,
    ProgressUpdateEvent,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    URLSource,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from pydantic import ValidationError

from api.deps import AppState
from api.enqueue import enqueue
from api.errors import ApiError
from shared.errors import ErrorCode
from shared.job_models import ChatRequest
from shared.jobs import EventType, JobKind
from shared.models import FeedbackRating, Message, MessageRole
from shared.queues import TaskName

__all__ = [
    "SESSION_EFFECT",
    "BookchatChatKitServer",
    "ChatKitContext",
    "HistoryStore",
    "citation_annotations",
    "item_id",
    "user_text",
]

log = logging.getLogger(__name__)

#: The client effect that hands a new thread's session token to the front end.
SESSION_EFFECT = "bookchat.session"
_TITLE_CHARS = 80
#: How long past the chat task's own time limit the relay keeps waiting for `done`.
_RELAY_MARGIN_S = 30.0


@dataclass(slots=True)
class ChatKitContext:
    """Per-request context handed to the server and the store."""

    state: AppState
    token_session: str | None  # the session X-Session-Token opens (checked), if any
    job_id: str  # the chat job this request may create (item ids derive from it)
    new_thread_id: str  # the session id a `threads.create` gets
    new_session_token: str  # and its token
    creating: bool = False  # this request is `threads.create`
    page_url: str | None = None  # request metadata `page_url`: the page the reader is on
    listed_session: str | None = None  # request metadata `session_id`: what threads.list shows

    def may_read(self, thread_id: str) -> bool:
        if self.creating and thread_id == self.new_thread_id:
            return True
        return self.token_session is not None and thread_id == self.token_session


def item_id(job_id: uuid.UUID | str, role: str) -> str:
    return f"msg_{job_id}_{role}"


def _parse_item_id(value: str) -> tuple[uuid.UUID, str] | uuid.UUID | None:
    """(job id, role) for job-derived ids, a row id for `msg_<row id>`, else None."""
    parts = value.split("_")
    try:
        if len(parts) == 3 and parts[0] == "msg":
            return uuid.UUID(parts[1]), parts[2]
        if len(parts) == 2 and parts[0] == "msg":
            return uuid.UUID(parts[1])
    except ValueError:
        return None
    return None


def user_text(item: UserMessageItem) -> str:
    """The question as plain text (tags contribute their visible text)."""
    parts = [
        part.text
        for part in item.content
        if isinstance(part, UserMessageTextContent | UserMessageTagContent)
    ]
    return "\n".join(p for p in parts if p).strip()


def citation_annotations(citations: list[dict[str, Any]]) -> list[ChatKitAnnotation]:
    """Citations as ChatKit source links: the page URL, titled `Title › Heading`."""
    annotations = []
    for citation in citations:
        title = str(citation.get("title") or "")
        heading = str(citation.get("heading") or "")
        label = f"{title} › {heading}" if title and heading and heading != title else title
        annotations.append(
            ChatKitAnnotation(
                source=URLSource(
                    url=str(citation.get("url") or ""),
                    title=label or heading or str(citation.get("path") or "source"),
                    description=str(citation.get("path") or "") or None,
                )
            )
        )
    return annotations


def _row_item(row: Message, thread_id: str) -> ThreadItem:
    rid = item_id(row.job_id, row.role) if row.job_id else f"msg_{row.id}"
    if row.role == MessageRole.USER:
        return UserMessageItem(
            id=rid,
            thread_id=thread_id,
            created_at=row.created_at,
            content=[UserMessageTextContent(text=row.content)],
            quoted_text=row.selection,
            inference_options=InferenceOptions(),
        )
    return AssistantMessageItem(
        id=rid,
        thread_id=thread_id,
        created_at=row.created_at,
        content=[
            AssistantMessageContent(
                text=row.content, annotations=citation_annotations(row.citations or [])
            )
        ],
    )


def _session_uuid(thread_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(thread_id)
    except ValueError as error:
        raise NotFoundError(f"No thread {thread_id!r}.") from error


class HistoryStore(Store[ChatKitContext]):
    """ChatKit's Store over the history tables (ChatSession = thread, Message = item)."""

    def generate_thread_id(self, context: ChatKitContext) -> str:
        return context.new_thread_id

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: ChatKitContext
    ) -> str:
        # The only message the SDK creates itself is the user's question: it gets the id the
        # worker's row will be read back under.
        if item_type == "message":
            return item_id(context.job_id, MessageRole.USER)
        return default_generate_id(item_type)

    def _authorize(self, thread_id: str, context: ChatKitContext) -> uuid.UUID:
        if not context.may_read(thread_id):
            raise ApiError(403, ErrorCode.FORBIDDEN, "This thread's session token is required.")
        return _session_uuid(thread_id)

    async def _find(self, session_id: uuid.UUID, value: str, context: ChatKitContext) -> Message:
        parsed = _parse_item_id(value)
        history = context.state.history
        if isinstance(parsed, tuple):
            row = await history.job_message(session_id, *parsed)
        elif isinstance(parsed, uuid.UUID):
            row = await history.message(parsed, session_id=session_id)
        else:
            row = None
        if row is None:
            raise NotFoundError(f"No item {value!r}.")
        return row

    async def load_thread(self, thread_id: str, context: ChatKitContext) -> ThreadMetadata:
        sid = self._authorize(thread_id, context)
        session = await context.state.history.session(sid)
        first = await context.state.history.first_question(sid)
        # A valid token for a session with no row yet (its first job has not finished): an
        # empty thread, not an error; only we mint tokens, so the id was handed out by us.
        created = session.created_at if session else datetime.now(UTC)
        title = first.content[:_TITLE_CHARS] if first else None
        return ThreadMetadata(id=thread_id, created_at=created, title=title)

    async def save_thread(self, thread: ThreadMetadata, context: ChatKitContext) -> None:
        """Creates the session row if missing (committed before its first job is queued, so
        the worker finds it). Titles are not stored."""
        sid = self._authorize(thread.id, context)
        await context.state.history.ensure_session(sid, site=context.state.settings.site_name)

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: ChatKitContext,
    ) -> Page[ThreadItem]:
        sid = self._authorize(thread_id, context)
        rows = await context.state.history.messages(sid)
        if order == "desc":
            rows.reverse()
        items = [_row_item(row, thread_id) for row in rows]
        if after is not None:
            ids = [item.id for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        has_more = len(items) > limit
        return Page(data=page, has_more=has_more, after=page[-1].id if page and has_more else None)

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: ChatKitContext
    ) -> Page[ThreadMetadata]:
        """There are no user accounts: a caller sees the one session whose id (request
        metadata `session_id`) and token it presents."""
        sid = context.listed_session
        if after is not None or sid is None or not context.may_read(sid):
            return Page(data=[])
        try:
            return Page(data=[await self.load_thread(sid, context)])
        except NotFoundError:
            return Page(data=[])

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: ChatKitContext
    ) -> None:
        """Nothing to write: the worker stores the question and the answer with the job."""
        self._authorize(thread_id, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        """Nothing to write: history rows change only through chat jobs."""
        self._authorize(thread_id, context)

    async def load_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> ThreadItem:
        sid = self._authorize(thread_id, context)
        return _row_item(await self._find(sid, item_id, context), thread_id)

    async def delete_thread(self, thread_id: str, context: ChatKitContext) -> None:
        sid = self._authorize(thread_id, context)
        await context.state.history.delete_session(sid)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: ChatKitContext
    ) -> None:
        sid = self._authorize(thread_id, context)
        try:
            row = await self._find(sid, item_id, context)
        except NotFoundError:
            return  # an item that was only ever streamed (a failed answer): nothing stored
        await context.state.history.delete_message(row.id)

    async def save_attachment(self, attachment: Attachment, context: ChatKitContext) -> None:
        raise _no_attachments()

    async def load_attachment(self, attachment_id: str, context: ChatKitContext) -> Attachment:
        raise _no_attachments()

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        raise _no_attachments()


def _no_attachments() -> ApiError:
    return ApiError(
        400, ErrorCode.UNSUPPORTED_OPERATION, "bookchat answers from the site; no attachments."
    )


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
        sid = store._authorize(thread_id, context)
        rating = FeedbackRating.UP if feedback == "positive" else FeedbackRating.DOWN
        rows = [await store._find(sid, value, context) for value in item_ids]
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
