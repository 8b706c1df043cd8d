"""Request and response bodies of the HTTP API (they become the OpenAPI schema at /docs)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.jobs import JobKind, JobStatus

__all__ = ["ChatAccepted", "ChatRequest", "ErrorBody", "JobAccepted", "JobOut"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=4000, description="The reader's question")
    session_id: uuid.UUID | None = Field(
        default=None, description="Continue this conversation (needs its session token)"
    )
    selection: str | None = Field(
        default=None, max_length=8000, description="Text the reader highlighted on the page"
    )
    page_url: str | None = Field(
        default=None, max_length=2048, description="The page the reader is on"
    )

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("message must not be blank")
        return value

    @field_validator("message", "selection")
    @classmethod
    def _no_control_chars(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 and c not in "\t\n\r" for c in value):
            raise ValueError("control characters are not allowed")
        return value


class ChatAccepted(BaseModel):
    job_id: str
    session_id: str
    session_token: str = Field(description="Send as `X-Session-Token` to continue the session")
    status_url: str
    events_url: str


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    events_url: str


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float
    updated_at: float


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
