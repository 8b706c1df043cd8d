"""History retention: delete conversations older than BOOKCHAT_HISTORY_RETENTION_DAYS.

Run daily by beat (worker/schedule.py, task `bookchat.history.retention`). What goes: every
message created before the cutoff, the feedback on those messages and their cached question
vectors, then the sessions left with no message. Rows are deleted in the database (four
DELETE statements, indexed on created_at), not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, exists, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ChatSession, Feedback, Message, QuestionVector

__all__ = ["RetentionResult", "delete_history_before", "retention_cutoff"]


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cutoff: datetime
    messages: int
    feedback: int
    sessions: int


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=days)


async def delete_history_before(
    sessionmaker: async_sessionmaker[AsyncSession], cutoff: datetime
) -> RetentionResult:
    """Delete history older than `cutoff` (an aware datetime), in one transaction."""
    m, f, v, s = (_table(t) for t in (Message, Feedback, QuestionVector, ChatSession))
    old = select(m.c.id).where(m.c.created_at < cutoff)
    async with sessionmaker() as db:
        connection = await db.connection()
        feedback = await connection.execute(delete(f).where(f.c.message_id.in_(old)))
        await connection.execute(delete(v).where(v.c.message_id.in_(old)))
        messages = await connection.execute(delete(m).where(m.c.created_at < cutoff))
        sessions = await connection.execute(
            delete(s).where(s.c.created_at < cutoff, ~exists().where(m.c.session_id == s.c.id))
        )
        await db.commit()
    return RetentionResult(
        cutoff=cutoff,
        messages=messages.rowcount,
        feedback=feedback.rowcount,
        sessions=sessions.rowcount,
    )


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table
