"""The job store: each job's state in a Redis hash and its event log in a Redis Stream.

Polling reads the hash; SSE reads the stream from `Last-Event-ID`, so a late or reconnecting
client misses nothing. Every state change writes the hash and appends a `status` event in one
server-side script, so the two never disagree. Both keys expire `ttl_s` after the last write.

A terminal state is final: once a job is `succeeded`, `failed` or `expired`, every later write
(a late failure report, a requeue, a heartbeat, a token) is refused by that same script, so
pollers and streamers can never see a job change its outcome (issue 16: a Redis blip used to
flip answered jobs to `failed/internal_error` after their `done` was written).

Every reader of a job's events goes through `JobStore.follow` (SSE, long-polls, the retrieve
endpoint, ChatKit).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = [
    "RECENT_JOBS_KEY",
    "EventType",
    "InvalidEventIdError",
    "Job",
    "JobEvent",
    "JobKind",
    "JobStatus",
    "JobStore",
    "parse_event_id",
]

log = logging.getLogger(__name__)

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


_UINT64_MAX = 2**64 - 1


class InvalidEventIdError(ValueError):
    """A stream position that is not `<ms>-<seq>` with both parts in 0..2**64-1."""


def parse_event_id(value: str) -> tuple[int, int]:
    """`"1700000000000-3"` -> (1700000000000, 3). Redis Stream ids are two unsigned 64-bit
    integers (https://redis.io/docs/latest/develop/data-types/streams/#entry-ids); anything
    else (`99999999999999999999-0`, `1-x`, `-1-0`) raises InvalidEventIdError."""
    left, sep, right = value.partition("-")
    if not sep or not left.isascii() or not right.isascii():
        raise InvalidEventIdError(value)
    if not (left.isdigit() and right.isdigit()) or len(left) > 20 or len(right) > 20:
        raise InvalidEventIdError(value)
    ms, seq = int(left), int(right)
    if ms > _UINT64_MAX or seq > _UINT64_MAX:
        raise InvalidEventIdError(value)
    return ms, seq


#: The job-gone event `follow` ends with when a job's keys have expired under its reader.
def _gone_event() -> JobEvent:
    return JobEvent(
        id="",
        type=EventType.ERROR,
        data={"code": "job_not_found", "message": "The job expired."},
    )


def _terminal_event(event: JobEvent) -> bool:
    return event.type in (EventType.DONE, EventType.ERROR)


# Coalescing: make ARGV[1] the pending job of KEYS[1] unless the job it names is still queued
# (then return that job's id). ARGV[2]: the job hash key prefix; ARGV[3]: the pointer's TTL.
_CLAIM_PENDING = """
local current = redis.call('GET', KEYS[1])
if current and redis.call('HGET', ARGV[2] .. current, 'status') == 'queued' then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return false
"""
_PENDING_KEY = "bookchat:pending:{}"


# One script for every write to an existing job: refuses when the job is gone or already in a
# terminal state, else sets the hash fields, appends the events and refreshes both TTLs.
# KEYS: hash, stream. ARGV: ttl, maxlen, incr_attempts (0/1), n_fields, fields (k v)...,
# then events (type data)... Returns the last event id written, or false when refused.
_GUARDED_WRITE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'expired' then
  return false
end
local ttl, maxlen = tonumber(ARGV[1]), ARGV[2]
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
local n = tonumber(ARGV[4])
local i = 5
if n > 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, i, i + 2 * n - 1))
  i = i + 2 * n
end
redis.call('EXPIRE', KEYS[1], ttl)
local id = ''
while i < #ARGV do
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', ARGV[i], 'data', ARGV[i + 1])
  i = i + 2
end
if id ~= '' then redis.call('EXPIRE', KEYS[2], ttl) end
return id
"""


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class JobStore:
    """Reads and writes jobs. One instance per process, sharing one Redis connection pool."""

    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._guarded_write = redis.register_script(_GUARDED_WRITE)
        self._claim_pending = redis.register_script(_CLAIM_PENDING)

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
        pipe: Any = self.redis.pipeline(transaction=True)
        pipe.hset(self.key(job.id), mapping=fields)
        pipe.expire(self.key(job.id), self.ttl_s)
        self._queue_event(pipe, job.id, EventType.STATUS, {"status": str(job.status)})
        await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(RECENT_JOBS_KEY, {job.id: now})
        pipe.zremrangebyrank(RECENT_JOBS_KEY, 0, -_RECENT_MAX - 1)
        await pipe.execute()
        return job

    async def claim_pending(self, coalesce_key: str, job_id: str) -> str | None:
        """Make `job_id` (just created, not yet sent) the one pending job of `coalesce_key`
        (e.g. re-indexing one site), unless a job of that key is still queued: then returns
        that job's id, and the caller discards its own (`discard`) and answers with it. So at
        most one such job waits while another runs."""
        current = await self._claim_pending(
            keys=[_PENDING_KEY.format(coalesce_key)], args=[job_id, _PREFIX, self.ttl_s]
        )
        if current is None:
            return None
        return current.decode() if isinstance(current, bytes) else str(current)

    async def discard(self, job_id: str) -> None:
        """Remove a job that was created but never sent (it lost a `claim_pending`)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key(job_id), self.events_key(job_id))
        pipe.zrem(RECENT_JOBS_KEY, job_id)
        await pipe.execute()

    async def get(self, job_id: str) -> Job | None:
        raw: Any = await self.redis.hgetall(self.key(job_id))
        return Job.from_hash(raw) if raw else None

    async def mark_running(self, job_id: str) -> bool:
        """`queued` -> `running` (counting the attempt). False when the job is gone or final."""
        now = time.time()
        return await self._write(
            job_id,
            {"status": str(JobStatus.RUNNING), "updated_at": now, "heartbeat_at": now},
            [(EventType.STATUS, {"status": str(JobStatus.RUNNING)})],
            count_attempt=True,
        )

    async def requeue(self, job_id: str, **detail: Any) -> bool:
        """Put a job back to `queued` (its task is about to be sent again), telling followers
        with a `status` event marked `requeued` so they drop what it streamed so far."""
        return await self._write(
            job_id,
            {"status": str(JobStatus.QUEUED), "updated_at": time.time(), "heartbeat_at": ""},
            [(EventType.STATUS, {"status": str(JobStatus.QUEUED), "requeued": True, **detail})],
        )

    async def heartbeat(self, job_id: str) -> bool:
        return await self._write(job_id, {"heartbeat_at": time.time()}, [])

    @asynccontextmanager
    async def heartbeating(self, job_id: str, every_s: float = 5.0) -> AsyncIterator[None]:
        """Refresh the job's heartbeat while the body runs, so a dead worker's job is told
        apart from a slow one (no heartbeat for several intervals = the worker is gone).

        A heartbeat that cannot be written (Redis restarting) is logged and tried again at the
        next interval; it never fails the job: the job's own writes report a real outage."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(every_s)
                try:
                    await self.heartbeat(job_id)
                except (RedisError, OSError) as error:
                    log.warning("job %s: heartbeat not written: %r", job_id, error)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def set_progress(self, job_id: str, progress: dict[str, Any]) -> bool:
        now = time.time()
        return await self._write(
            job_id,
            {"progress": _dumps(progress), "updated_at": now, "heartbeat_at": now},
            [(EventType.PROGRESS, progress)],
        )

    async def succeed(self, job_id: str, result: dict[str, Any]) -> bool:
        """End the job with its result. False (nothing written) if it had already ended."""
        return await self._finish(job_id, JobStatus.SUCCEEDED, {"result": _dumps(result)}, result)

    async def fail(self, job_id: str, code: str, message: str) -> bool:
        """End the job with an error. False (nothing written) if it had already ended."""
        error = {"code": code, "message": message}
        return await self._finish(job_id, JobStatus.FAILED, {"error": _dumps(error)}, error)

    async def expire(self, job_id: str, message: str) -> bool:
        """End a job that waited too long to be worth running (its reader has moved on)."""
        error = {"code": "job_expired", "message": message}
        return await self._finish(job_id, JobStatus.EXPIRED, {"error": _dumps(error)}, error)

    async def emit(self, job_id: str, type_: EventType, data: dict[str, Any]) -> bool:
        """Append one event (a token delta, citations) without touching the job's state;
        refused (False) once the job has ended, so nothing follows its `done`/`error`."""
        return await self._write(job_id, {}, [(type_, data)])

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

    async def follow(
        self,
        job_id: str,
        *,
        after: str = "0-0",
        timeout_s: float | None = None,
        alive: Callable[[], Awaitable[bool]] | None = None,
        block_s: float = 10.0,
    ) -> AsyncIterator[JobEvent]:
        """The job's events after `after`, as they arrive, until (and including) its `done` or
        `error` event. The one reader of a job's event stream (SSE, long-polls, the retrieve
        endpoint, ChatKit).

        Ends early, without an event, when `timeout_s` passes (None: no deadline), when
        `alive()` (checked between reads, at least every `block_s`) turns false, or when the job
        has ended and every event after `after` was read (a resumed stream of a finished job).
        When the job's keys are gone (expired), yields one `error` event `job_not_found` and ends.
        Raises InvalidEventIdError for a malformed or out-of-range `after`; RedisError passes."""
        parse_event_id(after)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        cursor = after
        while True:
            if alive is not None and not await alive():
                return
            wait_s = block_s
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
                if wait_s <= 0.001:
                    return
            events = await self.events(job_id, after=cursor, block_ms=max(1, int(wait_s * 1000)))
            for event in events:
                cursor = event.id
                yield event
                if _terminal_event(event):
                    return
            if not events:
                job = await self.get(job_id)
                if job is None:
                    yield _gone_event()
                    return
                if job.status.terminal and not await self.events(job_id, after=cursor, count=1):
                    return  # everything up to its end was read before `after`

    async def last_event_id(self, job_id: str) -> str:
        last: Any = await self.redis.xrevrange(self.events_key(job_id), count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    async def forget_expired(self, now: float) -> int:
        """Drop the recent-jobs index entries of jobs created over `ttl_s` ago (their keys
        have expired); returns how many."""
        return int(await self.redis.zremrangebyscore(RECENT_JOBS_KEY, "-inf", now - self.ttl_s))

    async def recent_statuses(self) -> dict[str, JobStatus | None]:
        """The status of every job in the recent-jobs index (None: its key has expired), read
        in one round trip."""
        ids = [
            raw.decode() if isinstance(raw, bytes) else str(raw)
            for raw in await self.redis.zrange(RECENT_JOBS_KEY, 0, -1)
        ]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.key(job_id), "status")
        statuses: list[bytes | None] = await pipe.execute()
        return {
            job_id: JobStatus(status.decode()) if status else None
            for job_id, status in zip(ids, statuses, strict=True)
        }

    async def forget(self, job_ids: list[str]) -> int:
        """Drop these ids from the recent-jobs index; returns how many were there."""
        return int(await self.redis.zrem(RECENT_JOBS_KEY, *job_ids)) if job_ids else 0

    async def _finish(
        self,
        job_id: str,
        status: JobStatus,
        fields: dict[str, str | bytes | float | int],
        payload: dict[str, Any],
    ) -> bool:
        event = EventType.DONE if status is JobStatus.SUCCEEDED else EventType.ERROR
        written = await self._write(
            job_id,
            {**fields, "status": str(status), "updated_at": time.time()},
            [(EventType.STATUS, {"status": str(status)}), (event, payload)],
        )
        if not written:
            log.info("job %s already ended or gone: %s not recorded", job_id, status)
        return written

    async def _write(
        self,
        job_id: str,
        fields: dict[str, str | bytes | float | int],
        events: list[tuple[EventType, dict[str, Any]]],
        *,
        count_attempt: bool = False,
    ) -> bool:
        """Apply one change to a live job atomically (see _GUARDED_WRITE); False if refused."""
        args: list[str | bytes | float | int] = [
            self.ttl_s,
            _STREAM_MAXLEN,
            1 if count_attempt else 0,
            len(fields),
        ]
        for name, value in fields.items():
            args += [name, value]
        for type_, data in events:
            args += [str(type_), _dumps(data)]
        result = await self._guarded_write(
            keys=[self.key(job_id), self.events_key(job_id)], args=args
        )
        return result is not None

    def _queue_event(self, pipe: Any, job_id: str, event: EventType, data: dict[str, Any]) -> None:
        pipe.xadd(
            self.events_key(job_id),
            {"type": str(event), "data": _dumps(data)},
            maxlen=_STREAM_MAXLEN,
            approximate=True,
        )
        pipe.expire(self.events_key(job_id), self.ttl_s)
