"""Celery tasks: thin shells that take ids and call the plain functions that do the work.

Time limits and retry timings come from settings through the app's `task_annotations`
(worker/celery_app.py `task_options`), so importing this module reads no settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from shared.errors import ErrorCode
from shared.jobs import Job
from shared.logging import job_context
from shared.queues import TaskName, task_of_kind
from shared.retention import delete_history_before, retention_cutoff
from shared.settings import Settings
from worker.celery_app import app, job_read_at_start
from worker.cleanup import cleanup_jobs
from worker.index_wait import answer_when_indexed
from worker.ingest_job import IndexUnreachableError, create_ingest_job, process_ingest_job
from worker.report_job import process_report_job
from worker.retrieve_job import process_retrieve_job
from worker.runtime import WorkerRuntime, get_runtime

log = logging.getLogger(__name__)

#: Tries of an ingestion while Qdrant is unreachable (backoff 30 s doubling, so about 15 min).
INGEST_MAX_RETRIES = 5


def _run_job(
    job_id: str,
    work: Callable[[WorkerRuntime, str], Coroutine[Any, Any, None]],
    *,
    timeout_message: str,
    crash_code: ErrorCode,
    crash_message: str,
    retry_on: tuple[type[Exception], ...] = (),
    time_limit_s: Callable[[Settings], float] | None = None,
) -> None:
    """Run a job's plain function; a time limit or a crash ends the job with a stable code
    instead of leaving it `running`. Exceptions in `retry_on` propagate (the task retries).

    `time_limit_s` (from the settings) bounds the job on the event loop itself: the threads
    pool every chat worker runs enforces no Celery time limit (prefork's soft limit still
    applies where a prefork worker runs the task)."""
    runtime = get_runtime()
    limit = time_limit_s(runtime.settings) if time_limit_s is not None else None
    try:
        runtime.run(_bounded(work(runtime, job_id), limit))
    except (SoftTimeLimitExceeded, _JobTimedOut):
        failure = (ErrorCode.JOB_TIMEOUT, timeout_message)
    except retry_on:
        raise
    except Exception:
        log.exception("job %s crashed", job_id)
        failure = (crash_code, crash_message)
    else:
        return
    runtime.run(runtime.jobs.fail(job_id, *failure), timeout=10)


class _JobTimedOut(Exception):
    """The job's own time limit (`_bounded`) passed."""


async def _bounded(job: Coroutine[Any, Any, None], limit_s: float | None) -> None:
    """Await `job`, cancelled after `limit_s` seconds (None: unbounded) with `_JobTimedOut`."""
    if limit_s is None:
        await job
        return
    deadline = asyncio.timeout(limit_s)
    try:
        async with deadline:
            await job
    except TimeoutError:
        if deadline.expired():
            raise _JobTimedOut from None
        raise


def send_job(job: Job) -> None:
    """Send a job's task by name, as the API does (blocking kombu publish)."""
    app.send_task(str(task_of_kind(job.kind)), kwargs={"job_id": job.id})


@app.task(name=TaskName.CHAT)
def answer_chat(*, job_id: str) -> None:
    """Answer a reader's question (job state, events and history written by the pipeline)."""

    def answer(runtime: WorkerRuntime, job_id: str) -> Coroutine[Any, Any, None]:
        return answer_when_indexed(runtime, job_id, job=job_read_at_start(job_id))

    _run_job(
        job_id,
        answer,
        timeout_message="The answer took too long and was abandoned.",
        crash_code=ErrorCode.INTERNAL_ERROR,
        crash_message="The chat worker hit an unexpected error.",
        time_limit_s=lambda settings: settings.chat_task_time_limit_s,
    )


class IngestTask(Task[Any, Any]):
    """Celery retries an ingestion whose vector store is unreachable (`autoretry_for`, with
    `retry_backoff` from settings); these hooks keep the job store in step with it."""

    autoretry_for = (IndexUnreachableError,)
    max_retries = INGEST_MAX_RETRIES
    retry_backoff = 30  # overridden by BOOKCHAT_INGEST_RETRY_BACKOFF_S (task_options)
    retry_backoff_max = 1800
    retry_jitter = False

    def on_retry(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """The retry is sent: the job is `queued` again, followers told when it runs."""
        job_id = kwargs["job_id"]
        # The countdown `autoretry_for` just gave the retry (same inputs; no jitter).
        countdown = get_exponential_backoff_interval(
            factor=int(self.retry_backoff),
            retries=self.request.retries,
            maximum=self.retry_backoff_max,
            full_jitter=self.retry_jitter,
        )
        log.warning("ingest job %s: %s; retrying in %ss", job_id, exc, countdown)
        runtime = get_runtime()
        runtime.run(runtime.jobs.requeue(job_id, retry_in_s=countdown), timeout=10)

    def on_failure(
        self,
        exc: Exception,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """Out of retries while the store stays unreachable: the job fails with its code."""
        if isinstance(exc, IndexUnreachableError):
            runtime = get_runtime()
            runtime.run(runtime.jobs.fail(kwargs["job_id"], exc.code, exc.message), timeout=10)


@app.task(name=TaskName.INGEST, base=IngestTask)
def ingest_site(*, job_id: str) -> None:
    """(Re-)index a Docusaurus site incrementally; retried later if Qdrant is unreachable."""
    _run_job(
        job_id,
        process_ingest_job,
        timeout_message="Ingestion exceeded its time limit.",
        crash_code=ErrorCode.INGEST_FAILED,
        crash_message="Ingestion hit an unexpected error; see logs.",
        retry_on=(IndexUnreachableError,),
    )


@app.task(name=TaskName.SCHEDULED_INGEST)
def scheduled_ingest() -> str:
    """Beat's nightly re-index: create the job and send its task by name, as the API does, so
    the ingestion runs (and is retried) like any other."""
    runtime = get_runtime()
    job = runtime.run(
        create_ingest_job(runtime.redis, runtime.jobs, runtime.settings, trigger="schedule"), 10
    )
    with job_context(job.id):
        log.info("scheduled re-index of site %s", runtime.settings.site_name)
        send_job(job)
    return job.id


@app.task(name=TaskName.CLEANUP)
def cleanup() -> dict[str, int]:
    """Requeue jobs whose worker or message was lost; forget expired jobs in the index."""
    runtime = get_runtime()

    async def requeue(job: Job) -> None:
        # kombu's publish is blocking I/O: keep it off the runtime's event loop.
        await asyncio.to_thread(send_job, job)

    report = runtime.run(
        cleanup_jobs(runtime.jobs, runtime.settings, redis=runtime.redis, requeue=requeue), 110
    )
    return {
        "scanned": report.scanned,
        "requeued": len(report.requeued),
        "lost": len(report.marked_lost),
        "forgotten": report.forgotten,
    }


@app.task(name=TaskName.RETRIEVE)
def retrieve(*, job_id: str) -> None:
    """Search the index for POST /v1/retrieve (the API waits for this job's `done`)."""
    _run_job(
        job_id,
        process_retrieve_job,
        timeout_message="The search took too long and was abandoned.",
        crash_code=ErrorCode.INTERNAL_ERROR,
        crash_message="The search hit an unexpected error.",
        time_limit_s=lambda _: 30,
    )


@app.task(name=TaskName.REPORT)
def build_report(*, job_id: str) -> None:
    """The maintainer's report for GET /v1/admin/report (the API waits for this job)."""
    _run_job(
        job_id,
        process_report_job,
        timeout_message="The report took too long and was abandoned.",
        crash_code=ErrorCode.INTERNAL_ERROR,
        crash_message="The report hit an unexpected error.",
        time_limit_s=lambda settings: settings.report_timeout_s + 30,
    )


@app.task(name=TaskName.HISTORY_RETENTION)
def delete_old_history() -> dict[str, int | str]:
    """Beat's daily retention: delete history older than BOOKCHAT_HISTORY_RETENTION_DAYS."""
    runtime = get_runtime()
    days = runtime.settings.history_retention_days
    if days <= 0:
        return {"skipped": "BOOKCHAT_HISTORY_RETENTION_DAYS is 0"}
    result = runtime.run(
        delete_history_before(runtime.sessionmaker, retention_cutoff(days)), timeout=600
    )
    log.info(
        "retention: deleted %d messages, %d feedback, %d sessions older than %s",
        result.messages,
        result.feedback,
        result.sessions,
        result.cutoff.isoformat(),
    )
    return {
        "cutoff": result.cutoff.isoformat(),
        "messages": result.messages,
        "feedback": result.feedback,
        "sessions": result.sessions,
    }
