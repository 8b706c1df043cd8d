"""What the job store keeps: a job's record (`Job`, a Redis hash) and its events (`JobEvent`,
entries of a Redis Stream), their enums, and where both live in Redis.

`shared/jobs.py` writes them (`JobStore`), `shared/job_reader.py` reads them (`JobReader`);
the typed request/result of each job kind is `shared/job_models.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

__all__ = [
    "JOB_KEY_PREFIX",
    "EventType",
    "Job",
    "JobEvent",
    "JobKind",
    "JobStatus",
    "events_key",
    "job_key",
]

JOB_KEY_PREFIX = "bookchat:job:"


def job_key(job_id: str) -> str:
    """The Redis hash holding the job's state."""
    return f"{JOB_KEY_PREFIX}{job_id}"


def events_key(job_id: str) -> str:
    """The Redis Stream holding the job's events."""
    return f"{JOB_KEY_PREFIX}{job_id}:events"


class JobKind(StrEnum):
    CHAT = "chat"
    RETRIEVE = "retrieve"
    INGEST = "ingest"
    REPORT = "report"  # the maintainer's report (GET /v1/admin/report)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED)


class EventType(StrEnum):
    STATUS = "status"
    PROGRESS = "progress"
    TOKEN = "token"
    CITATIONS = "citations"
    DONE = "done"
    ERROR = "error"


@dataclass(slots=True)
class Job:
    id: str
    kind: JobKind
    status: JobStatus
    created_at: float
    updated_at: float
    session_id: str | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    heartbeat_at: float | None = None
    attempts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any]) -> Job:
        def text(key: str) -> str | None:
            value = raw.get(key.encode())
            return value.decode() if value is not None else None

        def jsonf(key: str) -> Any:
            value = raw.get(key.encode())
            return orjson.loads(value) if value else None

        heartbeat = text("heartbeat_at")
        return cls(
            id=text("id") or "",
            kind=JobKind(text("kind") or ""),
            status=JobStatus(text("status") or ""),
            created_at=float(text("created_at") or 0),
            updated_at=float(text("updated_at") or 0),
            session_id=text("session_id") or None,
            progress=jsonf("progress"),
            result=jsonf("result"),
            error=jsonf("error"),
            heartbeat_at=float(heartbeat) if heartbeat else None,
            attempts=int(text("attempts") or 0),
            meta=jsonf("meta") or {},
        )


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: str  # the Redis Stream entry id: monotonic, usable as SSE `id` / `Last-Event-ID`
    type: EventType
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        """`done` or `error`: the job's last event."""
        return self.type in (EventType.DONE, EventType.ERROR)
