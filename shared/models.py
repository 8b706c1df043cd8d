"""History tables (SQLModel): chat sessions, their messages with citations, and feedback."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, LargeBinary, Text, Uuid
from sqlmodel import Field, SQLModel

__all__ = [
    "ChatSession",
    "Feedback",
    "FeedbackRating",
    "Message",
    "MessagePublic",
    "MessageRole",
    "QuestionVector",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class FeedbackRating(StrEnum):
    UP = "up"
    DOWN = "down"


class ChatSession(SQLModel, table=True):
    __tablename__ = "chat_session"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = _timestamp()
    site: str = Field(default="default", max_length=200, index=True)


class MessageBase(SQLModel):
    role: str = Field(max_length=16)  # a MessageRole; stored as text, no DB enum type
    content: str = Field(sa_column=Column(Text, nullable=False))
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    refused: bool = False
    # An answer the model's token limit cut off: its last whole sentences, marked so; the
    # report does not count it as answered.
    truncated: bool = False
    selection: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    page_url: str | None = Field(default=None, max_length=2048)


class Message(MessageBase, table=True):
    __tablename__ = "message"

    # Ids derive from the job id (uuid5), so a redelivered job writes the same rows again
    # and the insert is a no-op: the history never holds a message twice.
    id: uuid.UUID = Field(primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="chat_session.id", index=True)
    job_id: uuid.UUID | None = Field(default=None, index=True)
    model: str | None = Field(default=None, max_length=200)
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Assistant rows: milliseconds from the question's arrival (the job's creation) to the stored
    # answer, queue wait included; what the maintainer's report calls "time to answer".
    answer_ms: int | None = None
    # Assistant rows of a site from git: the commit of the index the answer was drawn from.
    index_commit: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )


class MessagePublic(MessageBase):
    id: uuid.UUID
    session_id: uuid.UUID
    job_id: uuid.UUID | None
    created_at: datetime
    index_commit: str | None = None


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # One rating per message (a message belongs to one session): a second one replaces it.
    message_id: uuid.UUID = Field(foreign_key="message.id", index=True, unique=True)
    rating: str = Field(max_length=8)  # a FeedbackRating
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )


class QuestionVector(SQLModel, table=True):
    """A question's embedding, cached for the report's topic grouping (`model` names the
    embedder's vector space; a different embedder re-embeds). Deleted with its message."""

    __tablename__ = "question_vector"

    message_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("message.id", ondelete="CASCADE"), primary_key=True)
    )
    model: str = Field(max_length=200)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32, little-endian
