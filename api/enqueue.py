"""Creating a job and handing it to the queue: the one way work enters the system."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import BaseModel
from redis.exceptions import RedisError

from api.deps import AppState, stream_token
from api.errors import ApiError
from api.schemas import JobAccepted
from shared.errors import ErrorCode
from shared.index_state import note_ingest_queued
from shared.job_models import IngestRequest
from shared.jobs import Job, JobKind
from shared.queues import TaskName

__all__ = ["enqueue", "enqueue_ingestion", "job_urls"]

log = logging.getLogger(__name__)


def job_urls(state: AppState, job_id: str, created_at: float | None = None) -> tuple[str, str]:
    """`status_url` and `events_url`, working as given: they carry a stream token that reads
    this one job until it expires (never the session token; see shared/access_tokens.py)."""
    token = stream_token(state, job_id, created_at)
    base = state.settings.public_base_url.rstrip("/")
    return (
        f"{base}/v1/jobs/{job_id}?token={token}",
        f"{base}/v1/jobs/{job_id}/events?token={token}",
    )


async def enqueue(
    state: AppState,
    kind: JobKind,
    task: TaskName,
    *,
    request: BaseModel,
    session_id: str | None = None,
    job_id: str | None = None,
    coalesce_key: str | None = None,
) -> Job:
    """Record the job as queued, then send its task. If either fails, nothing is left queued
    and the client gets a 503 it can retry. `request` is the kind's model in
    shared/job_models.py; the worker validates it back out of the job's `meta`.

    With `coalesce_key`, a job of the same key still waiting in the queue is returned instead
    of queuing another (`JobStore.claim_pending`): one running, at most one pending."""
    try:
        job = await state.jobs.create(
            kind,
            job_id=job_id,
            session_id=session_id,
            meta={"request": request.model_dump(mode="json")},
        )
        if coalesce_key is not None:
            pending = await state.jobs.claim_pending(coalesce_key, job.id)
            if pending is not None and (waiting := await state.jobs.get(pending)) is not None:
                await state.jobs.discard(job.id)
                log.info("coalesced into pending %s job %s", kind, pending)
                return waiting
    except RedisError as error:
        log.error("job store unavailable: %s", error)
        raise _queue_unavailable() from error
    try:
        # kombu's publish is blocking I/O: keep it off the event loop.
        await asyncio.to_thread(state.sender.send_task, str(task), kwargs={"job_id": job.id})
    except Exception as error:
        log.error("could not enqueue job %s: %s", job.id, error)
        with contextlib.suppress(RedisError):
            await state.jobs.fail(job.id, ErrorCode.QUEUE_UNAVAILABLE, "Could not enqueue.")
        raise _queue_unavailable() from error
    log.info("enqueued %s job %s", kind, job.id, extra={"job_id": job.id, "session_id": session_id})
    return job


def _queue_unavailable() -> ApiError:
    return ApiError(
        503,
        ErrorCode.QUEUE_UNAVAILABLE,
        "The job queue is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )


async def enqueue_ingestion(state: AppState, *, full_rebuild: bool = False) -> JobAccepted:
    """Queue an ingestion of the configured site (admin endpoint and signed webhook)."""
    if state.settings.site_dir is None:
        raise ApiError(409, ErrorCode.SITE_NOT_FOUND, "No site configured (BOOKCHAT_SITE_DIR).")
    request = IngestRequest.for_site(state.settings, full_rebuild=full_rebuild)
    job = await enqueue(
        state,
        JobKind.INGEST,
        TaskName.INGEST,
        request=request,
        coalesce_key=f"ingest:{request.site}:{'full' if full_rebuild else 'incremental'}",
    )
    await note_ingest_queued(state.jobs, state.settings.site_name, job.id)
    status_url, events_url = job_urls(state, job.id, job.created_at)
    return JobAccepted(job_id=job.id, status_url=status_url, events_url=events_url)
