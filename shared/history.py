"""The conversation history repository: sessions, their messages with citations, and feedback.

Every reader and writer of the history tables goes through `History`: the chat job and
`bookchat ask` (remember recent turns, record an exchange), the sessions routes (list a
conversation, store feedback) and ChatKit's store (threads and items over the same rows).

Rules kept here, once:
- One order: oldest first, and a question before its answer when both carry the same
  timestamp (`role` descending puts `user` before `assistant`).
- One writer of `ChatSession` rows (`ensure_session`): the chat job on its first answer, or
  ChatKit when a thread is created before its first job.
- Message ids derive from the chat job id (`message_ids`), so recording a redelivered job again
  writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ChatSession, Feedback, FeedbackRating, Message, MessageRole, utcnow

__all__ = ["Exchange", "History", "message_ids"]

_NAMESPACE = uuid.UUID("6f1c5e7a-0b6e-4d9f-9a51-3c2f8f0b6a10")
_OLDEST_FIRST = (col(Message.created_at), col(Message.role).desc())
_NEWEST_FIRST = (col(Message.created_at).desc(), col(Message.role))


def message_ids(job_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The user and assistant message ids of a chat job: stable, so a retry writes no copy."""
    return uuid.uuid5(_NAMESPACE, f"{job_id}:user"), uuid.uuid5(_NAMESPACE, f"{job_id}:assistant")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One question and its answer, as a chat job (or `bookchat ask`) records them."""

    job_id: str
    session_id: str
    site: str
    question: str
    answer: str
    citations: list[dict[str, Any]]
    refused: bool
    truncated: bool = False
    model: str | None = None
    usage: dict[str, Any] | None = None
    selection: str | None = None
    page_url: str | None = None
    # Milliseconds from the question's arrival (the job's creation) to this answer, queue wait
    # included: the maintainer's report's "time to answer".
    answer_ms: int | None = None
    # A site from git: the commit of the index the answer was drawn from.
    index_commit: str | None = None


def _insert_new(db: AsyncSession, row: SQLModel) -> Any:
    """An INSERT of `row` (its defaults filled in) that does nothing when its primary key is
    stored already: ON CONFLICT DO NOTHING, in PostgreSQL's or SQLite's dialect."""
    postgres = db.bind is not None and db.bind.dialect.name == "postgresql"
    table = row.__table__  # type: ignore[attr-defined]
    values = {column.name: getattr(row, column.name) for column in table.columns}
    return (
        (postgresql if postgres else sqlite).insert(table).values(values).on_conflict_do_nothing()
    )


class History:
    """The history tables behind one sessionmaker. Cheap to build; holds no connection."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    # --- sessions -----------------------------------------------------------------------------

    async def session(self, session_id: uuid.UUID) -> ChatSession | None:
        async with self._sessionmaker() as db:
            return await db.get(ChatSession, session_id)

    async def ensure_session(self, session_id: uuid.UUID, *, site: str) -> None:
        """Create the session row if it does not exist yet (a concurrent create is fine)."""
        async with self._sessionmaker() as db:
            if await db.get(ChatSession, session_id) is not None:
                return
            db.add(ChatSession(id=session_id, site=site))
            try:
                await db.commit()
            except IntegrityError:  # created concurrently: fine
                await db.rollback()

    async def delete_session(self, session_id: uuid.UUID) -> None:
        """Forget a session: its feedback, its messages, then the session row."""
        async with self._sessionmaker() as db:
            ids = select(Message.id).where(Message.session_id == session_id)
            await db.exec(delete(Feedback).where(col(Feedback.message_id).in_(ids)))
            await db.exec(delete(Message).where(col(Message.session_id) == session_id))
            await db.exec(delete(ChatSession).where(col(ChatSession.id) == session_id))
            await db.commit()

    # --- messages -----------------------------------------------------------------------------

    async def messages(self, session_id: uuid.UUID) -> list[Message]:
        """The whole conversation, oldest first."""
        async with self._sessionmaker() as db:
            query = select(Message).where(Message.session_id == session_id)
            return list((await db.exec(query.order_by(*_OLDEST_FIRST))).all())

    async def first_question(self, session_id: uuid.UUID) -> Message | None:
        async with self._sessionmaker() as db:
            query = (
                select(Message)
                .where(Message.session_id == session_id, Message.role == MessageRole.USER)
                .order_by(*_OLDEST_FIRST)
                .limit(1)
            )
            return (await db.exec(query)).first()

    async def message(
        self,
        message_id: uuid.UUID,
        *,
        session_id: uuid.UUID | None = None,
    ) -> Message | None:
        """A message by id; with `session_id`, only if it belongs to that session."""
        async with self._sessionmaker() as db:
            row = await db.get(Message, message_id)
        if row is None or (session_id is not None and row.session_id != session_id):
            return None
        return row

    async def job_message(
        self, session_id: uuid.UUID, job_id: uuid.UUID, role: str
    ) -> Message | None:
        """The question (`user`) or answer (`assistant`) a chat job recorded in a session."""
        async with self._sessionmaker() as db:
            query = select(Message).where(
                Message.session_id == session_id, Message.job_id == job_id, Message.role == role
            )
            return (await db.exec(query)).first()

    async def recent_turns(
        self,
        session_id: str,
        *,
        turns: int,
        before_job: str | None = None,
        from_job: str | None = None,
    ) -> list[dict[str, str]]:
        """The last `turns` exchanges (user + assistant messages), oldest first, as chat items
        (`{"role", "content"}`); `before_job` leaves out that job's own messages, `from_job`
        that job's question and everything after it (a retry asks it again)."""
        if turns <= 0:
            return []
        sid = uuid.UUID(session_id)
        async with self._sessionmaker() as db:
            query = select(Message).where(Message.session_id == sid)
            if before_job:
                query = query.where(Message.job_id != uuid.UUID(before_job))
            if from_job:
                retried = select(Message.created_at).where(
                    Message.session_id == sid,
                    Message.job_id == uuid.UUID(from_job),
                    Message.role == MessageRole.USER,
                )
                query = query.where(col(Message.created_at) < retried.scalar_subquery())
            rows = list((await db.exec(query.order_by(*_NEWEST_FIRST).limit(turns * 2))).all())
        rows.reverse()
        return [{"role": row.role, "content": row.content} for row in rows]

    async def record_question(
        self,
        *,
        job_id: str,
        session_id: str,
        site: str,
        question: str,
        selection: str | None = None,
        page_url: str | None = None,
        store_question_text: bool = True,
    ) -> uuid.UUID:
        """Store a question as it is queued, before its answer exists (the API does, so a
        reader who reloads finds it); returns its message id. Idempotent, and `record` of the
        same job keeps this row."""
        user_id, _ = message_ids(job_id)
        sid = uuid.UUID(session_id)
        row = Message(
            id=user_id,
            session_id=sid,
            job_id=uuid.UUID(job_id),
            role=MessageRole.USER,
            content=question if store_question_text else "",
            selection=selection,
            page_url=page_url,
        )
        async with self._sessionmaker() as db:
            for new in (ChatSession(id=sid, site=site), row):
                await db.exec(_insert_new(db, new))
            await db.commit()
        return user_id

    async def unanswered_jobs(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        """The jobs of this session's questions that have no answer row (yet), oldest first."""
        async with self._sessionmaker() as db:
            answered = select(Message.job_id).where(
                Message.session_id == session_id,
                Message.role == MessageRole.ASSISTANT,
                col(Message.job_id).is_not(None),
            )
            query = (
                select(Message.job_id)
                .where(
                    Message.session_id == session_id,
                    Message.role == MessageRole.USER,
                    col(Message.job_id).is_not(None),
                    col(Message.job_id).not_in(answered),
                )
                .order_by(*_OLDEST_FIRST)
            )
            return [job for job in (await db.exec(query)).all() if job is not None]

    async def record(
        self,
        exchange: Exchange,
        *,
        store_question_text: bool = True,
        replaces_job: str | None = None,
    ) -> uuid.UUID:
        """Store the question and the answer; returns the answer's message id. Idempotent: a
        redelivered job changes nothing. With `store_question_text` false (the site's
        BOOKCHAT_HISTORY_STORE_QUESTION_TEXT) the question row keeps everything but its text,
        stored as "".

        `replaces_job` (a retried question: ChatKit's `threads.retry_after_item`): that job's
        question and everything after it in the session (answers, their feedback) is deleted
        in the same transaction that stores this exchange, so a retry that fails erases
        nothing."""
        user_id, assistant_id = message_ids(exchange.job_id)
        sid, jid = uuid.UUID(exchange.session_id), uuid.UUID(exchange.job_id)
        question = Message(
            id=user_id,
            session_id=sid,
            job_id=jid,
            role=MessageRole.USER,
            content=exchange.question if store_question_text else "",
            selection=exchange.selection,
            page_url=exchange.page_url,
        )
        answer = Message(  # built second: its timestamp follows the question's
            id=assistant_id,
            session_id=sid,
            job_id=jid,
            role=MessageRole.ASSISTANT,
            content=exchange.answer,
            citations=exchange.citations,
            refused=exchange.refused,
            truncated=exchange.truncated,
            model=exchange.model,
            usage=exchange.usage,
            answer_ms=exchange.answer_ms,
            index_commit=exchange.index_commit,
        )
        # One transaction of three statements, each an insert that does nothing when its row
        # is there (a session asked in before, a redelivered job): what was a read before
        # every write, and a transaction of its own for the session, cost a worker with 200
        # answers in flight a database round trip each (on SQLite a hand-over to its thread).
        async with self._sessionmaker() as db:
            if replaces_job is not None and await db.get(Message, assistant_id) is None:
                # Only on the retry's first recording: a redelivered one must not delete what
                # was asked after it.
                await self._drop_from(db, sid, uuid.UUID(replaces_job), keep=jid)
            for row in (ChatSession(id=sid, site=exchange.site), question, answer):
                await db.exec(_insert_new(db, row))
            await db.commit()
        return assistant_id

    @staticmethod
    async def _drop_from(
        db: AsyncSession, session_id: uuid.UUID, job_id: uuid.UUID, *, keep: uuid.UUID
    ) -> None:
        """Delete job `job_id`'s question and every later message of the session (and their
        feedback), except job `keep`'s."""
        question = (
            await db.exec(
                select(Message).where(
                    Message.session_id == session_id,
                    Message.job_id == job_id,
                    Message.role == MessageRole.USER,
                )
            )
        ).first()
        if question is None:
            return
        doomed = select(Message.id).where(
            Message.session_id == session_id,
            col(Message.created_at) >= question.created_at,
            col(Message.job_id) != keep,
        )
        await db.exec(delete(Feedback).where(col(Feedback.message_id).in_(doomed)))
        await db.exec(
            delete(Message).where(
                col(Message.session_id) == session_id,
                col(Message.created_at) >= question.created_at,
                col(Message.job_id) != keep,
            )
        )

    async def delete_message(self, message_id: uuid.UUID) -> None:
        """Forget one message and the feedback on it."""
        async with self._sessionmaker() as db:
            await db.exec(delete(Feedback).where(col(Feedback.message_id) == message_id))
            await db.exec(delete(Message).where(col(Message.id) == message_id))
            await db.commit()

    # --- feedback -----------------------------------------------------------------------------

    async def add_feedback(
        self, messages: Sequence[Message], rating: FeedbackRating, comment: str | None = None
    ) -> list[Feedback]:
        """Store the session's rating of each message, in one transaction: one row per message
        (unique `message_id`), a later rating replacing the earlier one and its comment.
        Returns the stored rows."""
        try:
            return await self._put_feedback(messages, rating, comment)
        except IntegrityError:
            # Another request inserted the same message's first rating meanwhile: replace it.
            return await self._put_feedback(messages, rating, comment)

    async def _put_feedback(
        self, messages: Sequence[Message], rating: FeedbackRating, comment: str | None
    ) -> list[Feedback]:
        rows: list[Feedback] = []
        async with self._sessionmaker() as db:
            for message in messages:
                row = (
                    await db.exec(select(Feedback).where(Feedback.message_id == message.id))
                ).first()
                if row is None:
                    row = Feedback(message_id=message.id, rating=rating, comment=comment)
                else:
                    row.rating, row.comment, row.created_at = rating, comment, utcnow()
                db.add(row)
                rows.append(row)
            await db.commit()
            for row in rows:
                await db.refresh(row)
        return rows
