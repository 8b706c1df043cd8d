"""The job store's guarantees (issue 16): a terminal state is final, one `follow` reads a job's
events, stream positions are checked (shared/jobs.py). Over fakeredis (with Lua)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest
from redis.asyncio import Redis

from shared.job_models import RetrieveRequest
from shared.jobs import EventType, InvalidEventIdError, JobKind, JobStatus, JobStore, parse_event_id

pytestmark = pytest.mark.unit


@pytest.fixture
async def jobs() -> AsyncIterator[JobStore]:
    redis = fakeredis.FakeAsyncRedis()
    yield JobStore(redis, ttl_s=600)
    await redis.aclose()


async def test_nothing_after_succeeded_changes_the_job(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")
    await jobs.mark_running(job.id)
    assert await jobs.succeed(job.id, {"answer": "yes"})
    end = await jobs.last_event_id(job.id)

    assert not await jobs.fail(job.id, "internal_error", "late crash report")
    assert not await jobs.requeue(job.id)
    assert not await jobs.mark_running(job.id)
    assert not await jobs.set_progress(job.id, {"pages": 1})
    assert not await jobs.emit(job.id, EventType.TOKEN, {"delta": "late"})
    assert not await jobs.expire(job.id, "too late")
    assert await jobs.heartbeat(job.id) is False

    after = await jobs.get(job.id)
    assert after is not None
    assert after.status is JobStatus.SUCCEEDED
    assert after.result == {"answer": "yes"}
    assert after.error is None
    assert await jobs.last_event_id(job.id) == end  # no event after `done`


async def test_nothing_after_failed_changes_the_job(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.INGEST)
    assert await jobs.fail(job.id, "ingest_failed", "boom")
    assert not await jobs.succeed(job.id, {"pages": 3})
    failed = await jobs.get(job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.result is None


async def test_writes_to_a_gone_job_create_nothing(jobs: JobStore) -> None:
    assert not await jobs.heartbeat("no-such-job")
    assert not await jobs.fail("no-such-job", "x", "y")
    assert await jobs.redis.exists(jobs.key("no-such-job"), jobs.events_key("no-such-job")) == 0


async def test_a_heartbeat_that_cannot_be_written_does_not_fail_the_body() -> None:
    """Redis unreachable while the body runs: the heartbeat errors are logged, the body's
    outcome stands (before the fix the error was re-raised when the context exited)."""
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    jobs = JobStore(unreachable, ttl_s=600)
    finished = False
    async with jobs.heartbeating("some-job", every_s=0.01):
        await asyncio.sleep(0.3)  # several heartbeats, each failing to connect
        finished = True
    assert finished
    await unreachable.aclose()


async def test_follow_reads_to_the_end_and_stops(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")

    async def work() -> None:
        await jobs.mark_running(job.id)
        await jobs.emit(job.id, EventType.TOKEN, {"delta": "a"})
        await jobs.succeed(job.id, {"answer": "a"})

    reader = asyncio.create_task(_collect(jobs, job.id))
    await work()
    types = await asyncio.wait_for(reader, 10)
    assert types == ["status", "status", "token", "status", "done"]


async def test_succeed_writes_its_leading_events_in_the_same_write(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")
    await jobs.mark_running(job.id)
    last = [(EventType.TOKEN, {"delta": "end."}), (EventType.CITATIONS, {"citations": []})]
    assert await jobs.succeed(job.id, {"answer": "the end."}, events=last)
    events = await jobs.events(job.id)
    assert [(e.type, e.data) for e in events[-4:]] == [
        *last,
        (EventType.STATUS, {"status": "succeeded"}),
        (EventType.DONE, {"answer": "the end."}),
    ]
    # Refused as a whole once the job has ended: no event after its `done`.
    assert not await jobs.succeed(job.id, {"answer": "again"}, events=last)
    assert len(await jobs.events(job.id)) == len(events)


async def test_follow_of_a_finished_job_from_its_end_returns_at_once(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")
    await jobs.succeed(job.id, {"answer": "a"})
    end = await jobs.last_event_id(job.id)
    # block_s is long: ending at once proves the finished job was noticed, not a timeout.
    events = [e async for e in jobs.follow(job.id, after=end, block_s=0.2, timeout_s=30)]
    assert events == []


async def test_follow_of_an_expired_job_ends_with_job_not_found(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")
    end = await jobs.last_event_id(job.id)
    await jobs.redis.delete(jobs.key(job.id), jobs.events_key(job.id))
    events = [e async for e in jobs.follow(job.id, after=end, block_s=0.05, timeout_s=5)]
    assert [(e.type, e.data["code"]) for e in events] == [(EventType.ERROR, "job_not_found")]


async def test_follow_honours_its_deadline(jobs: JobStore) -> None:
    job = await jobs.create(JobKind.CHAT, session_id="s")
    end = await jobs.last_event_id(job.id)
    assert [e async for e in jobs.follow(job.id, after=end, timeout_s=0.1)] == []


@pytest.mark.parametrize(
    "bad",
    ["99999999999999999999-0", "0-99999999999999999999", "1", "-1-0", "a-b", "1-", "１-0", ""],
)
def test_out_of_range_or_malformed_positions_are_refused(bad: str) -> None:
    with pytest.raises(InvalidEventIdError):
        parse_event_id(bad)


def test_the_largest_position_is_accepted() -> None:
    top = 2**64 - 1
    assert parse_event_id(f"{top}-{top}") == (top, top)


async def _collect(jobs: JobStore, job_id: str) -> list[str]:
    return [str(e.type) async for e in jobs.follow(job_id, timeout_s=10)]


async def test_pending_request_only_for_a_job_still_to_run(jobs: JobStore) -> None:
    request = RetrieveRequest(query="install lumen")
    live = await jobs.create(JobKind.RETRIEVE, meta={"request": request.model_dump(mode="json")})
    assert await jobs.pending_request(live.id, RetrieveRequest) == request

    ended = await jobs.create(JobKind.RETRIEVE, meta={"request": request.model_dump(mode="json")})
    assert await jobs.fail(ended.id, "retrieve_timeout", "the reader gave up")
    assert await jobs.pending_request(ended.id, RetrieveRequest) is None
    assert await jobs.pending_request("no-such-job", RetrieveRequest) is None


async def test_start_marks_a_live_job_running_and_skips_an_ended_one(jobs: JobStore) -> None:
    request = RetrieveRequest(query="install lumen")
    live = await jobs.create(JobKind.RETRIEVE, meta={"request": request.model_dump(mode="json")})
    assert await jobs.start(live.id, RetrieveRequest) == request
    started = await jobs.get(live.id)
    assert started is not None
    assert started.status is JobStatus.RUNNING
    assert started.attempts == 1

    assert await jobs.succeed(live.id, {"passages": []})
    assert await jobs.start(live.id, RetrieveRequest) is None
    assert await jobs.start("no-such-job", RetrieveRequest) is None
