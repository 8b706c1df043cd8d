"""The job store: each job's state in a Redis hash and its event log in a Redis Stream.

Polling reads the hash; SSE reads the stream from `Last-Event-ID`, so a late or reconnecting
client misses nothing. Every state change writes the hash and appends a `status` event in one
MULTI/EXEC, so the two never disagree. Both keys expire `ttl_s` after the last write.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis

__all__ = [
    "RECENT_JOBS_KEY",
    "EventType",
    "Job",
    "JobEvent",
    "JobKind",
    "JobStatus",
    "JobStore",
]

_PREFIX = "bookchat:job:"
_STREAM_MAXLEN = 20_000
# A capped index of recent job ids (score: created_at) for `bookchat jobs` and the stale-job
# cleanup, which would otherwise have to SCAN every key.
RECENT_JOBS_KEY = "bookchat:jobs:recent"
_RECENT_MAX = 10_000


class JobKind(StrEnum):
    CHAT = "chat"
    RETRIEVE = "retrieve"
    INGEST = "ingest"


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


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class JobStore:
    """Reads and writes jobs. One instance per process, sharing one Redis connection pool."""

    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def key(job_id: str) -> str:
        return f"{_PREFIX}{job_id}"

    @staticmethod
    def events_key(job_id: str) -> str:
        return f"{_PREFIX}{job_id}:events"

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    async def create(
        self,
        kind: JobKind,
        *,
        job_id: str | None = None,
        session_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Job:
        now = time.time()
        job = Job(
            id=job_id or self.new_id(),
            kind=kind,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            session_id=session_id,
            meta=meta or {},
        )
        fields: dict[str, str | bytes | float | int] = {
            "id": job.id,
            "kind": str(kind),
            "status": str(job.status),
            "created_at": now,
            "updated_at": now,
            "session_id": session_id or "",
            "attempts": 0,
            "meta": _dumps(job.meta),
        }
        await self._write(job.id, fields, EventType.STATUS, {"status": str(job.status)})
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(RECENT_JOBS_KEY, {job.id: now})
        pipe.zremrangebyrank(RECENT_JOBS_KEY, 0, -_RECENT_MAX - 1)
        await pipe.execute()
        return job

    async def get(self, job_id: str) -> Job | None:
        raw: Any = await self.redis.hgetall(self.key(job_id))
        return Job.from_hash(raw) if raw else None

    async def mark_running(self, job_id: str) -> None:
        now = time.time()
        await self.redis.hincrby(self.key(job_id), "attempts", 1)
        await self._write(
            job_id,
            {"status": str(JobStatus.RUNNING), "updated_at": now, "heartbeat_at": now},
            EventType.STATUS,
            {"status": str(JobStatus.RUNNING)},
        )

    async def requeue(self, job_id: str, **detail: Any) -> None:
        """Put a job back to `queued` (its task is about to be sent again), telling followers
        with a `status` event marked `requeued` so they drop what it streamed so far."""
        await self._write(
            job_id,
            {"status": str(JobStatus.QUEUED), "updated_at": time.time(), "heartbeat_at": ""},
            EventType.STATUS,
            {"status": str(JobStatus.QUEUED), "requeued": True, **detail},
        )

    async def heartbeat(self, job_id: str) -> None:
        await self.redis.hset(self.key(job_id), "heartbeat_at", time.time())

    @asynccontextmanager
    async def heartbeating(self, job_id: str, every_s: float = 5.0) -> AsyncIterator[None]:
        """Refresh the job's heartbeat while the body runs, so a dead worker's job is told
        apart from a slow one (no heartbeat for several intervals = the worker is gone)."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(every_s)
                await self.heartbeat(job_id)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def set_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        await self._write(
            job_id,
            {"progress": _dumps(progress), "updated_at": time.time(), "heartbeat_at": time.time()},
            EventType.PROGRESS,
            progress,
        )

    async def succeed(self, job_id: str, result: dict[str, Any]) -> None:
        await self._finish(job_id, JobStatus.SUCCEEDED, {"result": _dumps(result)}, result)

    async def fail(self, job_id: str, code: str, message: str) -> None:
        error = {"code": code, "message": message}
        await self._finish(job_id, JobStatus.FAILED, {"error": _dumps(error)}, error)

    async def expire(self, job_id: str, message: str) -> None:
        """End a job that waited too long to be worth running (its reader has moved on)."""
        error = {"code": "job_expired", "message": message}
        await self._finish(job_id, JobStatus.EXPIRED, {"error": _dumps(error)}, error)

    async def emit(self, job_id: str, type_: EventType, data: dict[str, Any]) -> str:
        """Append one event (a token delta, citations) without touching the job's state."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(
            self.events_key(job_id),
            {"type": str(type_), "data": _dumps(data)},
            maxlen=_STREAM_MAXLEN,
            approximate=True,
        )
        pipe.expire(self.events_key(job_id), self.ttl_s)
        entry_id, _ = await pipe.execute()
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    async def events(
        self, job_id: str, *, after: str = "0-0", block_ms: int | None = None, count: int = 500
    ) -> list[JobEvent]:
        """Events after the stream id `after`; waits up to `block_ms` for new ones when given."""
        reply: Any = await self.redis.xread(
            {self.events_key(job_id): after}, count=count, block=block_ms
        )
        events: list[JobEvent] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                events.append(
                    JobEvent(
                        id=entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                        type=EventType(fields[b"type"].decode()),
                        data=orjson.loads(fields[b"data"]),
                    )
                )
        return events

    async def last_event_id(self, job_id: str) -> str:
        last: Any = await self.redis.xrevrange(self.events_key(job_id), count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    async def _finish(
        self,
        job_id: str,
        status: JobStatus,
        fields: dict[str, str | bytes | float | int],
        payload: dict[str, Any],
    ) -> None:
        now = time.time()
        event = EventType.DONE if status is JobStatus.SUCCEEDED else EventType.ERROR
        pipe = self.redis.pipeline(transaction=True)
        self._queue_write(
            pipe,
            job_id,
            {**fields, "status": str(status), "updated_at": now},
            EventType.STATUS,
            {"status": str(status)},
        )
        self._queue_event(pipe, job_id, event, payload)
        await pipe.execute()

    async def _write(
        self,
        job_id: str,
        fields: dict[str, str | bytes | float | int],
        event: EventType,
        data: dict[str, Any],
    ) -> None:
        pipe = self.redis.pipeline(transaction=True)
        self._queue_write(pipe, job_id, fields, event, data)
        await pipe.execute()

    def _queue_write(
        self,
        pipe: Any,
        job_id: str,
        fields: dict[str, str | bytes | float | int],
        event: EventType,
        data: dict[str, Any],
    ) -> None:
        pipe.hset(self.key(job_id), mapping=fields)
        pipe.expire(self.key(job_id), self.ttl_s)
        self._queue_event(pipe, job_id, event, data)

    def _queue_event(self, pipe: Any, job_id: str, event: EventType, data: dict[str, Any]) -> None:
        pipe.xadd(
            self.events_key(job_id),
            {"type": str(event), "data": _dumps(data)},
            maxlen=_STREAM_MAXLEN,
            approximate=True,
        )
        pipe.expire(self.events_key(job_id), self.ttl_s)
