"""Ingestion as a job: index a site with progress reported to the job store.

Two ingestions of one site never overlap (`worker.locks.site_lock`). The second one does not
wait: it ends at once as *succeeded* with result `{"skipped": "already_running",
"running_job_id": ...}`. Succeeded, not failed, because nothing went wrong: the index is being
brought up to date by the running job, and a nightly run or webhook that lands during a long
re-index should not page anyone. For a site from git the running job may have fetched before
the push the second one is for, so the second first asks it to fetch again (`refetch_key`):
the running job then runs another pass on the newest commit before it ends.
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
from ingestion_jobs.embedding import site_embedder
from ingestion_jobs.indexer import IngestProgress, IngestReport, index_site
from ingestion_jobs.page_catalog import site_catalog
from ingestion_jobs.site_repo import Checkout, SiteRepo, check_out
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

__all__ = [
    "SKIPPED_ALREADY_RUNNING",
    "create_ingest_job",
    "ingest_result",
    "process_ingest_job",
    "refetch_key",
]

log = logging.getLogger(__name__)


def refetch_key(site: str) -> str:
    """Set by an ingestion of a site from git that found another one running: the running one
    fetches again before it ends, so pushes during an ingestion end on the newest commit."""
    return f"bookchat:ingest:refetch:{site}"


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
    repo = SiteRepo.from_settings(runtime.settings) if request.from_repo else None
    site_dir = Path(request.site_dir or runtime.settings.site_dir or "")
    if request.from_repo and repo is None:
        await jobs.fail(job_id, ErrorCode.SITE_NOT_FOUND, "BOOKCHAT_SITE_REPO is not set")
        return
    if repo is None and not await asyncio.to_thread(site_dir.is_dir):
        await jobs.fail(job_id, ErrorCode.SITE_NOT_FOUND, f"No site folder at {site_dir}")
        return
    site = request.site or runtime.settings.site_name
    result: IngestResult | None = None
    asked_to_refetch = False
    while True:
        try:
            async with site_lock(
                runtime.redis,
                site,
                holder=job_id,
                timeout_s=runtime.settings.ingest_lock_timeout_s,
                on_renew=lambda: jobs.heartbeat(job_id),
            ) as held:
                if repo is not None:
                    await runtime.redis.delete(refetch_key(site))  # this pass fetches
                if result is None:
                    await jobs.mark_running(job_id)
                result = await _index(runtime, job_id, site_dir, site, request, repo, held)
                if result is None:
                    return  # failed, with its code
        except SiteBusyError as busy:
            if result is not None:
                break  # another job holds the site now and fetches after the push: ours is done
            if repo is not None and not asked_to_refetch:
                # The running ingestion may have fetched before the push this job is for: ask it
                # to fetch again when it ends, then try once more in case it just ended.
                await runtime.redis.set(
                    refetch_key(site), job_id, ex=3 * runtime.settings.ingest_lock_timeout_s
                )
                asked_to_refetch = True
                continue
            log.info("ingestion of site %s skipped: job %s is running", site, busy.holder)
            if busy.holder:
                await hand_over(runtime.redis, site, job_id, busy.holder)
            skipped = IngestSkipped(
                skipped=SKIPPED_ALREADY_RUNNING, running_job_id=busy.holder, site=site
            )
            await jobs.succeed(job_id, skipped.model_dump(mode="json"))
            return
        if repo is None or not await runtime.redis.exists(refetch_key(site)):
            break
        log.info("site %s was pushed to during the ingestion: fetching again", site)
    await jobs.succeed(job_id, result.model_dump(mode="json"))


async def _index(
    runtime: IngestRuntime,
    job_id: str,
    site_dir: Path,
    site: str,
    request: IngestRequest,
    repo: SiteRepo | None,
    held: HeldLock,
) -> IngestResult | None:
    """One pass (under the site's lock): fetch the repository if the site is one, then index.
    None when the job failed (its code recorded); the index is then left as it was."""
    jobs = runtime.jobs
    checkout: Checkout | None = None
    if repo is not None:
        try:
            checkout = await asyncio.to_thread(check_out, repo, runtime.settings.data_dir)
        except BookchatError as error:
            log.warning("ingestion of site %s: %s", site, error.message)
            await jobs.fail(job_id, error.code, error.message)
            return None
        site_dir = checkout.site_dir
        log.info("site %s: %s at %s", site, repo.shown_url, checkout.commit)
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
            embedder=site_embedder(runtime.settings, runtime.embedder),
            collection=runtime.settings.collection,
            site=site,
            site_url=request.site_url or runtime.settings.site_url,
            full_rebuild=request.full_rebuild,
            progress=on_progress,
            on_indexed=on_indexed,
            repo_root=checkout.root if checkout is not None else None,
        )
    except _unreachable() as error:
        # Qdrant is down or restarting: not this job's fault. The task retries it later.
        raise IndexUnreachableError(
            ErrorCode.INDEX_UNAVAILABLE, f"The vector store is unreachable ({error!r})."
        ) from error
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return None
    if checkout is not None and repo is not None:
        report.commit, report.repo, report.ref = checkout.commit, repo.shown_url, checkout.ref
    await mark_ready(runtime.redis, site, commit=report.commit, ref=report.ref)
    return ingest_result(report, site)
