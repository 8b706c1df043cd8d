"""The job store: each job's state in a Redis hash and its event log in a Redis Stream.

Polling reads the hash; SSE reads the stream from `Last-Event-ID`, so a late or reconnecting
client misses nothing. Every state change writes the hash and appends a `status` event in one
server-side script, so the two never disagree. Both keys expire `ttl_s` after the last write.

A terminal state is final: once a job is `succeeded`, `failed` or `expired`, every later write
(a late failure report, a requeue, a heartbeat, a token) is refused by that same script, so
pollers and streamers can never see a job change its outcome (issue 16: a Redis blip used to
flip answered jobs to `failed/internal_error` after their `done` was written).

Where each part lives: the records and enums (`Job`, `JobEvent`, `JobKind`, `JobStatus`,
`EventType`) in `shared/job_records.py`; the read side (`get`, `events`, `follow`, event ids) in
`shared/job_reader.py` (`JobReader`, which `JobStore` extends); here the writes, the recent-jobs
index and coalescing. The public names are re-exported here, so `from shared.jobs import ...`
keeps serving every caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.job_reader import InvalidEventIdError, JobReader, RequestT, parse_event_id
from shared.job_records import JOB_KEY_PREFIX, EventType, Job, JobEvent, JobKind, JobStatus

__all__ = [
    "RECENT_JOBS_KEY",
    "UNFINISHED_JOBS_KEY",
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

_STREAM_MAXLEN = 20_000
# A capped index of recent job ids (score: created_at) for `bookchat jobs` and the stale-job
# cleanup, which would otherwise have to SCAN every key.
RECENT_JOBS_KEY = "bookchat:jobs:recent"
_RECENT_MAX = 10_000
# Every job not yet finished (score: created_at), uncapped: the cleanup must find a lost job
# however many jobs were created after it (the capped index above lost it past 10,000, issue
# 30). An entry leaves when its job ends, or when the cleanup finds its job gone or ended.
UNFINISHED_JOBS_KEY = "bookchat:jobs:unfinished"


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


class JobStore(JobReader):
    """Reads (see `JobReader`) and writes jobs. One instance per process, sharing one Redis
    connection pool."""

    def __init__(self, redis: Redis, *, ttl_s: int, keep_question_text: bool = True) -> None:
        """`keep_question_text=False` (BOOKCHAT_HISTORY_STORE_QUESTION_TEXT=false): a job's
        request keeps its `message` only until the job ends, then it is "" in Redis too (it
        used to stay there for the job's whole TTL, issue 30)."""
        super().__init__(redis)
        self.ttl_s = ttl_s
        self.keep_question_text = keep_question_text
        self._guarded_write = redis.register_script(_GUARDED_WRITE)
        self._claim_pending = redis.register_script(_CLAIM_PENDING)

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
        # One round trip: the job, its first event and its entry in the recent-jobs index.
        pipe: Any = self.redis.pipeline(transaction=True)
        pipe.hset(self.key(job.id), mapping=fields)
        pipe.expire(self.key(job.id), self.ttl_s)
        self._queue_event(pipe, job.id, EventType.STATUS, {"status": str(job.status)})
        pipe.zadd(RECENT_JOBS_KEY, {job.id: now})
        pipe.zremrangebyrank(RECENT_JOBS_KEY, 0, -_RECENT_MAX - 1)
        pipe.zadd(UNFINISHED_JOBS_KEY, {job.id: now})
        await pipe.execute()
        return job

    async def claim_pending(self, coalesce_key: str, job_id: str) -> str | None:
        """Make `job_id` (just created, not yet sent) the one pending job of `coalesce_key`
        (e.g. re-indexing one site), unless a job of that key is still queued: then returns
        that job's id, and the caller discards its own (`discard`) and answers with it. So at
        most one such job waits while another runs."""
        current = await self._claim_pending(
            keys=[_PENDING_KEY.format(coalesce_key)], args=[job_id, JOB_KEY_PREFIX, self.ttl_s]
        )
        if current is None:
            return None
        return current.decode() if isinstance(current, bytes) else str(current)

    async def discard(self, job_id: str) -> None:
        """Remove a job that was created but never sent (it lost a `claim_pending`)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key(job_id), self.events_key(job_id))
        pipe.zrem(RECENT_JOBS_KEY, job_id)
        pipe.zrem(UNFINISHED_JOBS_KEY, job_id)
        await pipe.execute()

    async def mark_running(self, job_id: str) -> bool:
        """`queued` -> `running` (counting the attempt). False when the job is gone or final."""
        now = time.time()
        return await self._write(
            job_id,
            {"status": str(JobStatus.RUNNING), "updated_at": now, "heartbeat_at": now},
            [(EventType.STATUS, {"status": str(JobStatus.RUNNING)})],
            count_attempt=True,
        )

    async def start(self, job_id: str, request_type: type[RequestT]) -> RequestT | None:
        """Mark a job still to be run `running` and return its request (see `pending_request`);
        None when there is nothing to do: the job is gone or has ended."""
        request = await self.pending_request(job_id, request_type)
        if request is None or not await self.mark_running(job_id):
            return None
        return request

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

    async def succeed(
        self,
        job_id: str,
        result: dict[str, Any],
        *,
        events: Sequence[tuple[EventType, dict[str, Any]]] = (),
    ) -> bool:
        """End the job with its result. False (nothing written) if it had already ended.
        `events` are appended first, in the same atomic write (a chat answer's last token
        delta and its citations: one round trip instead of three)."""
        return await self._finish(
            job_id, JobStatus.SUCCEEDED, {"result": _dumps(result)}, result, before=list(events)
        )

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

    async def forget_expired(self, now: float) -> int:
        """Drop the recent-jobs index entries of jobs created over `ttl_s` ago (their keys
        have expired); returns how many."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(RECENT_JOBS_KEY, "-inf", now - self.ttl_s)
        pipe.zremrangebyscore(UNFINISHED_JOBS_KEY, "-inf", now - self.ttl_s)
        removed: list[int] = await pipe.execute()
        return int(removed[0])

    async def recent_statuses(self, *, unfinished: bool = False) -> dict[str, JobStatus | None]:
        """The status of every job in the recent-jobs index (None: its key has expired), read
        in one round trip; `unfinished`: of every job in the index of unfinished jobs instead
        (uncapped)."""
        ids = [
            raw.decode() if isinstance(raw, bytes) else str(raw)
            for raw in await self.redis.zrange(
                UNFINISHED_JOBS_KEY if unfinished else RECENT_JOBS_KEY, 0, -1
            )
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
        """Drop these ids from both job indexes; returns how many the recent-jobs index held."""
        if not job_ids:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(RECENT_JOBS_KEY, *job_ids)
        pipe.zrem(UNFINISHED_JOBS_KEY, *job_ids)
        removed: list[int] = await pipe.execute()
        return int(removed[0])

    async def finished(self, job_ids: list[str]) -> None:
        """Drop these ids (of jobs that ended) from the index of unfinished jobs."""
        if job_ids:
            await self.redis.zrem(UNFINISHED_JOBS_KEY, *job_ids)

    async def _finish(
        self,
        job_id: str,
        status: JobStatus,
        fields: dict[str, str | bytes | float | int],
        payload: dict[str, Any],
        *,
        before: list[tuple[EventType, dict[str, Any]]] | None = None,
    ) -> bool:
        event = EventType.DONE if status is JobStatus.SUCCEEDED else EventType.ERROR
        if not self.keep_question_text:
            fields = {**fields, **await self._meta_without_question(job_id)}
        written = await self._write(
            job_id,
            {**fields, "status": str(status), "updated_at": time.time()},
            [*(before or []), (EventType.STATUS, {"status": str(status)}), (event, payload)],
        )
        await self.finished([job_id])  # ended now, or already ended or gone
        if not written:
            log.info("job %s already ended or gone: %s not recorded", job_id, status)
        return written

    async def _meta_without_question(self, job_id: str) -> dict[str, str | bytes | float | int]:
        """The `meta` field with its request's `message` emptied (nothing when there is none).
        `meta` is written once, at `create`, so reading it before the guarded write is safe."""
        raw = await self.redis.hget(self.key(job_id), "meta")
        meta = orjson.loads(raw) if raw else None
        request = meta.get("request") if isinstance(meta, dict) else None
        if not isinstance(request, dict) or not request.get("message"):
            return {}
        request["message"] = ""
        return {"meta": _dumps(meta)}

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
