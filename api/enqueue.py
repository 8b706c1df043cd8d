"""Creating a job and handing it to the queue: the one way work enters the system."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from api.deps import AppState, stream_token
from api.errors import ApiError
from api.schemas import JobAccepted
from shared.errors import ErrorCode, known_code
from shared.index_state import note_ingest_queued
from shared.job_models import ChatJobRequest, IngestRequest
from shared.jobs import EventType, Job, JobEvent, JobKind, JobStatus
from shared.queues import TaskName

__all__ = ["enqueue", "enqueue_chat", "enqueue_ingestion", "job_urls"]

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
    before_send: Callable[[Job], Awaitable[None]] | None = None,
) -> Job:
    """Record the job as queued, then send its task. If either fails, nothing is left queued
    and the client gets a 503 it can retry. `request` is the kind's model in
    shared/job_models.py; the worker validates it back out of the job's `meta`.
    `before_send` runs between the two (a chat job's question is stored there, so the worker
    finds it).

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
    if before_send is not None:
        await before_send(job)
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


async def enqueue_chat(
    state: AppState, request: ChatJobRequest, *, job_id: str | None = None
) -> Job:
    """Queue a reader's question (POST /v1/chat, ChatKit): the job, then the question in
    history, then the task, all before the client hears anything, so a reader who reloads or
    navigates away at once finds the question (and its answer, which the worker writes whether
    or not anyone listens). A retried question (`retry_of`) is not stored again: the one it
    retries stands until the worker replaces it with the answered retry.

    With the database unreachable the question is still queued (the job holds it, and the
    worker stores it with its answer, or fails the job `database_unavailable`): history
    being down does not stop questions being asked."""
    assert request.session_id is not None  # the routes always set it
    session_id = str(request.session_id)

    async def store_question(job: Job) -> None:
        if request.retry_of is not None:
            return
        try:
            await state.history.record_question(
                job_id=job.id,
                session_id=session_id,
                site=state.settings.site_name,
                question=request.message,
                selection=request.selection,
                page_url=request.page_url,
                store_question_text=state.settings.history_store_question_text,
            )
        except (SQLAlchemyError, OSError) as error:
            log.warning("job %s: question not stored before its answer: %r", job.id, error)

    return await enqueue(
        state,
        JobKind.CHAT,
        TaskName.CHAT,
        job_id=job_id,
        session_id=session_id,
        request=request,
        before_send=store_question,
    )


#: HTTP status of a synchronous endpoint whose job ended with one of these error codes.
_JOB_ERROR_STATUS: dict[str, int] = {
    ErrorCode.INDEX_UNAVAILABLE: 503,
    ErrorCode.INDEX_EMPTY: 503,
    ErrorCode.JOB_TIMEOUT: 504,
    ErrorCode.RETRIEVE_TIMEOUT: 504,
    ErrorCode.REPORT_TIMEOUT: 504,
}


async def run_and_wait(
    state: AppState,
    kind: JobKind,
    task: TaskName,
    *,
    request: BaseModel,
    timeout_s: float,
    timeout_code: ErrorCode,
    timeout_message: str,
    retry_after_s: int = 5,
) -> dict[str, Any]:
    """Enqueue a job and wait for its result, for an endpoint that answers synchronously
    (`/v1/retrieve`, the admin report) while the work still runs on a worker.

    Returns the `done` event's result. Raises ApiError: the job's own error code when it failed
    (503/504 for index and timeout codes, else 500); 503 `queue_unavailable` when Redis fails;
    504 `timeout_code` with `timeout_message` when `timeout_s` passes first, after failing the
    job if it was still queued, so that no worker runs it for a reader who is gone."""
    job = await enqueue(state, kind, task, request=request)
    return await wait_for_result(
        state,
        job.id,
        timeout_s=timeout_s,
        timeout_code=timeout_code,
        timeout_message=timeout_message,
        retry_after_s=retry_after_s,
    )


async def wait_for_result(
    state: AppState,
    job_id: str,
    *,
    timeout_s: float,
    timeout_code: ErrorCode,
    timeout_message: str,
    retry_after_s: int = 5,
    on_event: Callable[[JobEvent], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """The `done` event's result of a queued job, each earlier event handed to `on_event`
    (MCP's progress). Raises ApiError as `run_and_wait` says."""
    try:
        async for event in state.jobs.follow(job_id, timeout_s=timeout_s):
            if event.type is EventType.DONE:
                return event.data
            if event.type is EventType.ERROR:
                code = known_code(str(event.data.get("code") or ErrorCode.INTERNAL_ERROR))
                raise ApiError(
                    _JOB_ERROR_STATUS.get(code, 500),
                    code,
                    str(event.data.get("message") or "The job failed."),
                )
            if on_event is not None:
                await on_event(event)
        current = await state.jobs.get(job_id)
        if current is not None and current.status is JobStatus.QUEUED:
            await state.jobs.fail(job_id, timeout_code, "Abandoned by the API.")
    except RedisError as error:
        raise _queue_unavailable() from error
    raise ApiError(504, timeout_code, timeout_message, headers={"Retry-After": str(retry_after_s)})


def _queue_unavailable() -> ApiError:
    return ApiError(
        503,
        ErrorCode.QUEUE_UNAVAILABLE,
        "The job queue is unavailable; retry shortly.",
        headers={"Retry-After": "5"},
    )


async def enqueue_ingestion(state: AppState, *, full_rebuild: bool = False) -> JobAccepted:
    """Queue an ingestion of the configured site (admin endpoint and signed webhook)."""
    if not state.settings.has_site:
        raise ApiError(
            409,
            ErrorCode.SITE_NOT_FOUND,
            "No site configured (BOOKCHAT_SITE_DIR or BOOKCHAT_SITE_REPO).",
        )
    request = IngestRequest.for_site(state.settings, full_rebuild=full_rebuild)
    job = await enqueue(
        state,
        JobKind.INGEST,
        TaskName.INGEST,
        request=request,
        coalesce_key=f"ingest:{request.site}:{'full' if full_rebuild else 'incremental'}",
    )
    await note_ingest_queued(state.redis, state.jobs, state.settings.site_name, job.id)
    status_url, events_url = job_urls(state, job.id, job.created_at)
    return JobAccepted(job_id=job.id, status_url=status_url, events_url=events_url)
