"""Ingestion as a job: index a site with progress reported to the job store.

Two ingestions of one site never overlap (`worker.locks.site_lock`). The second one does not
wait: it ends at once as *succeeded* with result `{"skipped": "already_running",
"running_job_id": ...}`. Succeeded, not failed, because nothing went wrong: the index is being
brought up to date by the running job, and a nightly run or webhook that lands during a long
re-index should not page anyone.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ingestion_jobs.documents import SiteRead
from ingestion_jobs.indexer import IngestProgress, IngestReport, index_site
from ingestion_jobs.page_catalog import site_catalog
from shared.errors import BookchatError, ErrorCode
from shared.index_state import hand_over, mark_ready, note_ingest_queued
from shared.job_models import SKIPPED_ALREADY_RUNNING, IngestRequest, IngestResult, IngestSkipped
from shared.jobs import Job, JobKind, JobStore
from shared.settings import Settings
from shared.site_pages import PageCatalog
from shared.vectorstore import StoreLockedError
from worker.locks import HeldLock, SiteBusyError, site_lock

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from worker.runtime import IngestRuntime

__all__ = ["SKIPPED_ALREADY_RUNNING", "create_ingest_job", "ingest_result", "process_ingest_job"]

log = logging.getLogger(__name__)


def ingest_result(report: IngestReport, site: str) -> IngestResult:
    """The job's result for the indexer's report."""
    return IngestResult.model_validate({**asdict(report), "site": site})


async def create_ingest_job(
    redis: Redis, jobs: JobStore, settings: Settings, *, trigger: str, full_rebuild: bool = False
) -> Job:
    """A queued ingestion job of the configured site, as `POST /v1/ingestions` creates it."""
    job = await jobs.create(
        JobKind.INGEST,
        meta={
            "request": IngestRequest.for_site(settings, full_rebuild=full_rebuild).model_dump(
                mode="json"
            ),
            "trigger": trigger,
        },
    )
    await note_ingest_queued(redis, jobs, settings.site_name, job.id)
    return job


class IndexUnreachableError(BookchatError):
    """The vector store could not be reached: the ingestion should be retried later."""


def _unreachable() -> tuple[type[BaseException], ...]:
    """The errors that mean the store is down, restarting, or (embedded) held by another process
    for now. qdrant-client's own can only be raised once qdrant-client is imported (a Qdrant
    server is configured): a worker on the embedded store never loads it (~50 MB of RSS)."""
    kinds: tuple[type[BaseException], ...] = (
        httpx.TransportError,
        ConnectionError,
        StoreLockedError,
    )
    qdrant_errors = sys.modules.get("qdrant_client.http.exceptions")
    if qdrant_errors is not None:
        kinds += (qdrant_errors.ResponseHandlingException,)
    return kinds


async def process_ingest_job(runtime: IngestRuntime, job_id: str) -> None:
    jobs = runtime.jobs
    request = await jobs.pending_request(job_id, IngestRequest)
    if request is None:
        return
    site_dir = Path(request.site_dir or runtime.settings.site_dir or "")
    if not await asyncio.to_thread(site_dir.is_dir):
        await jobs.fail(job_id, ErrorCode.SITE_NOT_FOUND, f"No site folder at {site_dir}")
        return
    site = request.site or runtime.settings.site_name
    try:
        async with site_lock(
            runtime.redis,
            site,
            holder=job_id,
            timeout_s=runtime.settings.ingest_lock_timeout_s,
            on_renew=lambda: jobs.heartbeat(job_id),
        ) as held:
            await _index(runtime, job_id, site_dir, site, request, held)
    except SiteBusyError as busy:
        log.info("ingestion of site %s skipped: job %s is running", site, busy.holder)
        if busy.holder:
            await hand_over(runtime.redis, site, job_id, busy.holder)
        skipped = IngestSkipped(
            skipped=SKIPPED_ALREADY_RUNNING, running_job_id=busy.holder, site=site
        )
        await jobs.succeed(job_id, skipped.model_dump(mode="json"))


async def _index(
    runtime: IngestRuntime,
    job_id: str,
    site_dir: Path,
    site: str,
    request: IngestRequest,
    held: HeldLock,
) -> None:
    jobs = runtime.jobs
    await jobs.mark_running(job_id)
    loop = asyncio.get_running_loop()

    def on_progress(progress: IngestProgress) -> None:
        # Called from the indexing thread before each of its writes: a lost lock stops the run
        # there (`LockLostError` out of `index_site`), before it writes over the new holder's.
        held.check()
        # Hand the progress write to the loop, don't wait for it.
        asyncio.run_coroutine_threadsafe(jobs.set_progress(job_id, asdict(progress)), loop)

    def on_indexed(read: SiteRead) -> None:
        # Called from the indexing thread once the chunks are in: the page catalog follows.
        try:
            summary, pages = site_catalog(read, site)
            write = PageCatalog(runtime.sessionmaker).replace(summary, pages)
            asyncio.run_coroutine_threadsafe(write, loop).result()
        except Exception as error:  # the index is good; only llms.txt and get_page go stale
            log.error(
                "ingestion %s: the page catalog was not written: %r",
                job_id,
                error,
                extra={"job_id": job_id},
            )

    try:
        if await asyncio.to_thread(lambda: runtime.store.current(runtime.settings.collection)):
            # An index is there already (this run only updates it): questions need not wait.
            await mark_ready(runtime.redis, site)
        report = await asyncio.to_thread(
            index_site,
            site_dir,
            store=runtime.store,
            embedder=runtime.embedder,
            collection=runtime.settings.collection,
            site=site,
            site_url=request.site_url or runtime.settings.site_url,
            full_rebuild=request.full_rebuild,
            progress=on_progress,
            on_indexed=on_indexed,
        )
    except _unreachable() as error:
        # Qdrant is down or restarting: not this job's fault. The task retries it later.
        raise IndexUnreachableError(
            ErrorCode.INDEX_UNAVAILABLE, f"The vector store is unreachable ({error!r})."
        ) from error
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return
    await mark_ready(runtime.redis, site)
    await jobs.succeed(job_id, ingest_result(report, site).model_dump(mode="json"))
