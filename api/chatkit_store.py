"""ChatKit's `Store` over bookchat's history tables: a thread is a chat session, an item is a
history row (see api/chatkit_server.py for the decisions behind it). Also the per-request
context both the store and the server (api/chatkit_server.py) read, and the ids, citations
and rows as ChatKit items.

The store never writes a message: the question is stored as it is queued, the answer by the
worker when the chat job finishes, under the item ids derived from the job
(``msg_<job id>_<role>``). A question whose answer is still being written is followed by an
assistant item holding the answer so far (api/pending.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatkit.store import NotFoundError, Store, StoreItemType, default_generate_id
from chatkit.types import (
    Annotation as ChatKitAnnotation,
)
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    Attachment,
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadMetadata,
    URLSource,
    UserMessageItem,
    UserMessageTextContent,
)

from api.deps import AppState
from api.errors import ApiError
from api.pending import pending_answers
from api.schemas import PendingAnswer
from shared.errors import ErrorCode
from shared.models import Message, MessageRole

__all__ = ["ChatKitContext", "HistoryStore", "citation_annotations", "item_id"]

_TITLE_CHARS = 80


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
    queued: bool = False  # this request's question is stored and its job queued
    retrying: bool = False  # a `threads.retry_after_item`: the worker replaces what it retries

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


def _pending_item(pending: PendingAnswer, question: Message, thread_id: str) -> ThreadItem | None:
    """The answer of a question still being written, as far as it has come (or what it is
    doing: the pages being read); None once the job failed or is gone (the question stands
    alone, to be asked again)."""
    if pending.status not in ("queued", "running"):
        return None
    text = pending.answer_so_far
    if not text:
        progress = pending.progress or {}
        text = str(progress.get("message") or "Searching the documentation…")
    return AssistantMessageItem(
        id=item_id(pending.job_id, MessageRole.ASSISTANT),
        thread_id=thread_id,
        created_at=question.created_at,
        content=[AssistantMessageContent(text=text)],
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

    def authorize(self, thread_id: str, context: ChatKitContext) -> uuid.UUID:
        if not context.may_read(thread_id):
            raise ApiError(403, ErrorCode.FORBIDDEN, "This thread's session token is required.")
        return _session_uuid(thread_id)

    async def find_message(
        self, session_id: uuid.UUID, value: str, context: ChatKitContext
    ) -> Message:
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
        sid = self.authorize(thread_id, context)
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
        sid = self.authorize(thread.id, context)
        await context.state.history.ensure_session(sid, site=context.state.settings.site_name)

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: ChatKitContext,
    ) -> Page[ThreadItem]:
        sid = self.authorize(thread_id, context)
        rows = await context.state.history.messages(sid)
        pending = await pending_answers(context.state, sid)
        items: list[ThreadItem] = []
        for row in rows:
            items.append(_row_item(row, thread_id))
            waiting = (
                pending.get(row.job_id) if row.job_id and row.role == MessageRole.USER else None
            )
            if waiting is not None and (shown := _pending_item(waiting, row, thread_id)):
                items.append(shown)
        if order == "desc":
            items.reverse()
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
        self.authorize(thread_id, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        """Nothing to write: history rows change only through chat jobs."""
        self.authorize(thread_id, context)

    async def load_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> ThreadItem:
        sid = self.authorize(thread_id, context)
        return _row_item(await self.find_message(sid, item_id, context), thread_id)

    async def delete_thread(self, thread_id: str, context: ChatKitContext) -> None:
        sid = self.authorize(thread_id, context)
        await context.state.history.delete_session(sid)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: ChatKitContext
    ) -> None:
        sid = self.authorize(thread_id, context)
        if context.retrying:
            return  # the retry's answer replaces these (History.record), a failed one nothing
        try:
            row = await self.find_message(sid, item_id, context)
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
