"""A question asked while the site's first index is built waits for it (bounded), and the API
says `index_building` where it cannot wait (POST /v1/retrieve, /readyz)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from api.deps import AppState
from shared.errors import BookchatError, ErrorCode
from shared.index_state import building_job, hand_over, mark_ready, note_ingest_queued
from shared.jobs import EventType, JobKind, JobStore
from worker.index_wait import answer_when_indexed, wait_for_index

pytestmark = pytest.mark.unit


async def _chat_job(jobs: JobStore) -> str:
    request = {"message": "How do I home the arm?", "session_id": "s", "selection": None}
    job = await jobs.create(JobKind.CHAT, session_id="s", meta={"request": request})
    return job.id


async def test_the_first_ingestion_makes_the_site_building_until_it_ends(state: AppState) -> None:
    jobs = state.jobs
    first = await jobs.create(JobKind.INGEST)
    assert await note_ingest_queued(state.redis, jobs, "default", first.id)
    assert await building_job(state.redis, jobs, "default") == first.id
    # A second ingestion queued meanwhile does not take the record over...
    second = await jobs.create(JobKind.INGEST)
    assert not await note_ingest_queued(state.redis, jobs, "default", second.id)
    # ...and one skipped because another runs hands the record to the running one.
    await hand_over(state.redis, "default", first.id, second.id)
    await jobs.succeed(first.id, {"skipped": "already_running"})
    assert await building_job(state.redis, jobs, "default") == second.id
    # A failed or crashed ingestion never leaves the site building for good.
    await jobs.fail(second.id, ErrorCode.INGEST_FAILED, "broke")
    assert await building_job(state.redis, jobs, "default") is None
    # Once ready, later ingestions (the nightly re-index) never make questions wait.
    await mark_ready(state.redis, "default")
    third = await jobs.create(JobKind.INGEST)
    assert not await note_ingest_queued(state.redis, jobs, "default", third.id)
    assert await building_job(state.redis, jobs, "default") is None


async def test_a_question_waits_for_the_first_index_and_says_so(state: AppState) -> None:
    jobs = state.jobs
    ingest = await jobs.create(JobKind.INGEST)
    await note_ingest_queued(state.redis, jobs, "default", ingest.id)
    chat_id = await _chat_job(jobs)
    runtime = SimpleNamespace(jobs=jobs, redis=state.redis, settings=state.settings)
    waiting = asyncio.create_task(wait_for_index(runtime, chat_id))
    while not any(e.type is EventType.PROGRESS for e in await jobs.events(chat_id)):
        assert not waiting.done()
        await asyncio.sleep(0.01)
    events = await jobs.events(chat_id)
    assert {"status": "indexing", "ingest_job_id": ingest.id} in [e.data for e in events]
    assert (await jobs.get(chat_id)).progress["message"] == "Indexing the site…"  # type: ignore[union-attr]
    await mark_ready(state.redis, "default")
    await jobs.succeed(ingest.id, {"chunks_total": 3})
    await asyncio.wait_for(waiting, 5)
    assert (await jobs.get(chat_id)).progress["stage"] == "indexed"  # type: ignore[union-attr]


async def test_the_wait_is_bounded_and_fails_with_index_building(state: AppState) -> None:
    jobs = state.jobs
    ingest = await jobs.create(JobKind.INGEST)
    await note_ingest_queued(state.redis, jobs, "default", ingest.id)
    chat_id = await _chat_job(jobs)
    settings = state.settings.model_copy(update={"index_wait_s": 0.2})
    runtime = SimpleNamespace(jobs=jobs, redis=state.redis, settings=settings)
    with pytest.raises(BookchatError) as raised:
        await wait_for_index(runtime, chat_id)
    assert raised.value.code is ErrorCode.INDEX_BUILDING
    await answer_when_indexed(runtime, chat_id)
    job = await jobs.get(chat_id)
    assert job is not None
    assert job.error is not None
    assert (str(job.status), job.error["code"]) == ("failed", "index_building")


async def test_retrieve_and_readyz_say_index_building(
    client: httpx.AsyncClient, state: AppState
) -> None:
    ingest = await state.jobs.create(JobKind.INGEST)
    await note_ingest_queued(state.redis, state.jobs, state.settings.site_name, ingest.id)
    refused = await client.post("/v1/retrieve", json={"query": "home pose"})
    assert refused.status_code == 503
    assert refused.json()["code"] == "index_building"
    assert refused.headers["retry-after"] == "10"
    state.settings.readyz_require_workers = False
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["index"].startswith("building")
    await state.jobs.succeed(ingest.id, {})
    ready = await client.get("/readyz")
    assert ready.json()["checks"]["index"] == "ok"
