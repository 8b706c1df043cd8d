"""An ingest worker SIGKILLed in the middle of a re-index: the next run completes the index."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.docusaurus import read_site
from shared.job_models import IngestRequest
from shared.jobs import RECENT_JOBS_KEY, EventType, Job, JobKind, JobStatus, JobStore
from shared.queues import TaskName, make_sender
from shared.redis_client import make_redis
from shared.vectorstore import open_store
from tests.conftest import SAMPLE_SITE
from tests.faults import running, start_worker, stop_process, wait_for
from tests.stack import Stack

pytestmark = pytest.mark.integration

PAGES = 300


def write_pages(site: Path, marker: str) -> None:
    """Many pages of several sections each, so a re-index takes long enough to be cut."""
    folder = site / "docs" / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(PAGES):
        sections = "\n\n".join(
            f"## Part {k}\n\nPage {n} part {k} says {marker} about joint {k} and servo {n}."
            for k in range(6)
        )
        (folder / f"page-{n:03d}.md").write_text(f"# Generated page {n}\n\n{sections}\n")


def queue_ingestion(stack: Stack) -> str:
    async def create() -> str:
        redis = make_redis(stack.settings.redis_url)
        try:
            job = await JobStore(redis, ttl_s=3600).create(
                JobKind.INGEST,
                meta={"request": IngestRequest.for_site(stack.settings).model_dump(mode="json")},
            )
            return job.id
        finally:
            await redis.aclose()

    job_id = asyncio.run(create())
    make_sender(str(stack.settings.redis_url)).send_task(
        str(TaskName.INGEST), kwargs={"job_id": job_id}
    )
    return job_id


def job_state(stack: Stack, job_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        redis = make_redis(stack.settings.redis_url)
        try:
            job = await JobStore(redis, ttl_s=3600).get(job_id)
            assert job is not None
            return {"status": str(job.status), "progress": job.progress or {}}
        finally:
            await redis.aclose()

    return asyncio.run(read())


def test_ingest_worker_killed_mid_run_then_the_next_run_completes(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    write_pages(site, "oldmarkerq")
    stack = make_stack(
        site=site, BOOKCHAT_INGEST_LOCK_TIMEOUT_S="5", BOOKCHAT_EMBEDDING_BATCH_SIZE="4"
    )
    write_pages(site, "newmarkerq")  # every generated chunk changed: a long incremental re-index

    first = queue_ingestion(stack)
    wait_for(
        lambda: (
            0
            < job_state(stack, first)["progress"].get("done", 0)
            < job_state(stack, first)["progress"].get("total", 0)
        ),
        timeout=60,
        what="the re-index to be part-way",
    )
    stop_process(stack.worker, kill=True)  # SIGKILL mid-run
    with running(start_worker(stack.env, tmp_path / "second.log")) as worker:
        second = queue_ingestion(stack)
        done = wait_for(
            lambda: (
                job_state(stack, second)["status"] in ("succeeded", "failed")
                and job_state(stack, second)
            ),
            timeout=120,
            what="the next ingestion to finish",
        )
        stop_process(worker)
    assert done["status"] == "succeeded", done

    store = open_store(stack.settings)  # the workers are gone: the store is ours to open
    try:
        texts = [
            str(point.payload.get("text"))
            for point in store.scroll(stack.settings.collection, fields=["text"])
        ]
    finally:
        store.close()
    stale = sum("oldmarkerq" in text for text in texts)
    fresh = sum("newmarkerq" in text for text in texts)
    expected = sum(
        "newmarkerq" in chunk.text
        for page in read_site(site).pages
        for chunk in chunk_page(page, site=stack.settings.site_name)
    )
    assert stale == 0  # nothing of the interrupted state is left
    assert fresh == expected  # every chunk of the new text, once


def test_an_ingestion_that_lost_its_site_lock_stops_instead_of_reporting_success(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    """Issue 30, item 11: the lock of a running re-index passes to another ingestion (as after
    renewals failed for a whole TTL). The first run must stop before its next write and fail
    with `ingest_lock_lost`; it used to go on (overlapping the new holder, whose change its
    writes and deletes then undid) and report success."""
    from worker.locks import lock_key

    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    write_pages(site, "oldmarkerq")
    stack = make_stack(site=site, BOOKCHAT_EMBEDDING_BATCH_SIZE="4")
    write_pages(site, "newmarkerq")  # a long incremental re-index

    first = queue_ingestion(stack)
    wait_for(
        lambda: job_state(stack, first)["progress"].get("done", 0) > 0,
        timeout=60,
        what="the re-index to be part-way",
    )

    async def take_over() -> None:
        redis = make_redis(stack.settings.redis_url)
        try:
            await redis.set(lock_key(stack.settings.site_name), "another-ingestion", ex=600)
        finally:
            await redis.aclose()

    asyncio.run(take_over())

    async def read_job() -> Job | None:
        redis = make_redis(stack.settings.redis_url)
        try:
            return await JobStore(redis, ttl_s=3600).get(first)
        finally:
            await redis.aclose()

    job = wait_for(
        lambda: (found := asyncio.run(read_job())) is not None and found.status.terminal and found,
        timeout=120,
        what="the first run to end",
    )
    assert job.status is JobStatus.FAILED, (job, stack.log())
    assert (job.error or {}).get("code") == "ingest_lock_lost", job
    progress = job.progress or {}
    assert progress.get("done", 0) < progress.get("total", 0), progress  # it stopped part-way


def test_nightly_reindex_retries_a_transient_store_failure_without_the_cleanup(
    make_stack: Callable[..., Stack],
) -> None:
    """Beat's task sends the ingestion by name; the store is unavailable at first (held by
    another process: the embedded store's transient failure, retried like an unreachable server), so
    Celery retries it after the backoff, and the job succeeds long before the stale-job cleanup
    (BOOKCHAT_JOB_STALE_AFTER_S, 600 s) would have looked at it."""
    stack = make_stack(BOOKCHAT_INGEST_RETRY_BACKOFF_S="1")

    async def read_ingest_job() -> tuple[Job, list[dict[str, Any]]] | None:
        redis = make_redis(stack.settings.redis_url)
        try:
            store = JobStore(redis, ttl_s=3600)
            for raw in await redis.zrange(RECENT_JOBS_KEY, 0, -1):
                job = await store.get(raw.decode())
                if job is not None and job.kind is JobKind.INGEST:
                    events = await store.events(job.id)
                    return job, [e.data for e in events if e.type is EventType.STATUS]
            return None
        finally:
            await redis.aclose()

    def requeued() -> tuple[Job, list[dict[str, Any]]] | None:
        found = asyncio.run(read_ingest_job())
        return found if found and any(event.get("requeued") for event in found[1]) else None

    def finished() -> Job | None:
        found = asyncio.run(read_ingest_job())
        return found[0] if found and found[0].status.terminal else None

    holder = open_store(stack.settings)  # another process holds the embedded store
    try:
        make_sender(str(stack.settings.redis_url)).send_task(str(TaskName.SCHEDULED_INGEST))
        _, events = wait_for(requeued, timeout=60, what="the nightly ingestion's retry")
    finally:
        holder.close()
    assert {"status": "queued", "requeued": True, "retry_in_s": 1} in events
    job = wait_for(finished, timeout=90, what="the retried ingestion to finish")
    assert job.status is JobStatus.SUCCEEDED, (job, stack.log())
    assert job.attempts >= 2  # it ran again: a retry, not the cleanup (which needs 600 s)
    assert job.meta["trigger"] == "schedule"
    assert "pages_seen" in (job.result or {})
