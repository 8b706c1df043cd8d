"""Conversation history in the database: what the agent remembers, and what it writes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ChatSession, Message, MessageRole

__all__ = ["load_recent_turns", "message_ids", "save_exchange"]

_NAMESPACE = uuid.UUID("6f1c5e7a-0b6e-4d9f-9a51-3c2f8f0b6a10")


def message_ids(job_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The user and assistant message ids of a chat job: stable, so a retry writes no copy."""
    return uuid.uuid5(_NAMESPACE, f"{job_id}:user"), uuid.uuid5(_NAMESPACE, f"{job_id}:assistant")


async def load_recent_turns(
    sessionmaker: async_sessionmaker[AsyncSession],
    session_id: str,
    *,
    turns: int,
    before_job: str | None = None,
) -> list[dict[str, str]]:
    """The last `turns` exchanges (user + assistant messages), oldest first, as chat items."""
    if turns <= 0:
        return []
    sid = uuid.UUID(session_id)
    async with sessionmaker() as db:
        query = (
            select(Message)
            .where(Message.session_id == sid)
            .order_by(col(Message.created_at).desc())
            .limit(turns * 2)
        )
        if before_job:
            query = query.where(Message.job_id != uuid.UUID(before_job))
        rows = list((await db.exec(query)).all())
    rows.reverse()
    return [{"role": row.role, "content": row.content} for row in rows]


async def save_exchange(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    job_id: str,
    session_id: str,
    site: str,
    question: str,
    selection: str | None,
    page_url: str | None,
    answer: str,
    citations: list[dict[str, Any]],
    refused: bool,
    model: str | None,
    usage: dict[str, Any] | None,
) -> uuid.UUID:
    """Store the question and the answer. Idempotent: a redelivered job changes nothing."""
    user_id, assistant_id = message_ids(job_id)
    sid, jid = uuid.UUID(session_id), uuid.UUID(job_id)
    async with sessionmaker() as db:
        if await db.get(ChatSession, sid) is None:
            db.add(ChatSession(id=sid, site=site))
            await db.flush()
        if await db.get(Message, assistant_id) is None:
            if await db.get(Message, user_id) is None:
                db.add(
                    Message(
                        id=user_id,
                        session_id=sid,
                        job_id=jid,
                        role=MessageRole.USER,
                        content=question,
                        selection=selection,
                        page_url=page_url,
                    )
                )
                await db.flush()  # the question's timestamp precedes the answer's
            db.add(
                Message(
                    id=assistant_id,
                    session_id=sid,
                    job_id=jid,
                    role=MessageRole.ASSISTANT,
                    content=answer,
                    citations=citations,
                    refused=refused,
                    model=model,
                    usage=usage,
                )
            )
        await db.commit()
    return assistant_id
