"""Reading a job: its state hash (`get`) and its event stream (`events`, `follow`).

`JobReader` is the read side of the job store; `shared/jobs.py`'s `JobStore` adds the writes.
Every reader of a job's events goes through `follow` (SSE, long-polls, the retrieve endpoint,
ChatKit), which resumes from a stream position (`Last-Event-ID`), so a late or reconnecting
client misses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from shared.job_records import EventType, Job, JobEvent, events_key, job_key

__all__ = ["InvalidEventIdError", "JobReader", "parse_event_id"]

log = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=BaseModel)

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


class JobReader:
    """Reads jobs from Redis; `JobStore` (shared/jobs.py) is the same plus the writes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(job_id: str) -> str:
        return job_key(job_id)

    @staticmethod
    def events_key(job_id: str) -> str:
        return events_key(job_id)

    async def get(self, job_id: str) -> Job | None:
        raw: Any = await self.redis.hgetall(self.key(job_id))
        return Job.from_hash(raw) if raw else None

    async def pending_request(self, job_id: str, request_type: type[RequestT]) -> RequestT | None:
        """The request of a job still to be run (`meta["request"]`, written by api/enqueue.py),
        validated as its kind's model (shared/job_models.py); None when the job is gone
        (expired) or has already ended (a redelivered task, or a job its reader gave up on):
        then there is nothing to do."""
        job = await self.get(job_id)
        if job is None or job.status.terminal:
            log.info("job %s is gone or has ended; skipped", job_id)
            return None
        return request_type.model_validate(job.meta["request"])

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
                if event.terminal:
                    return
            if not events:
                job = await self.get(job_id)
                if job is None:
                    yield _gone_event()
                    return
                if job.status.terminal and not await self.events(job_id, after=cursor, count=1):
                    return  # everything up to its end was read before `after`

    async def answer_so_far(self, job_id: str) -> tuple[str, str]:
        """The text a chat job has streamed so far (its `token` deltas since its last restarted
        attempt) and the id of the last event read: what a reader who reloads mid-answer is
        shown, and where following the job resumes. ("", "0-0") for a job with no events."""
        text: list[str] = []
        cursor = "0-0"
        while batch := await self.events(job_id, after=cursor, count=1000):
            for event in batch:
                cursor = event.id
                if event.type is EventType.TOKEN:
                    text.append(str(event.data.get("delta", "")))
                elif event.type is EventType.STATUS and event.data.get("restarted"):
                    text.clear()
        return "".join(text), cursor

    async def last_event_id(self, job_id: str) -> str:
        last: Any = await self.redis.xrevrange(self.events_key(job_id), count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
