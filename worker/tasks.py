"""Celery tasks: thin shells that take ids and call the plain functions that do the work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from shared.errors import ErrorCode
from shared.jobs import Job, JobKind
from shared.logging import job_context
from shared.queues import TaskName
from shared.settings import get_settings
from worker.celery_app import app, record_job_metrics
from worker.chat import process_chat_job
from worker.cleanup import cleanup_jobs
from worker.ingest_job import IndexUnreachableError, create_ingest_job, process_ingest_job
from worker.retrieve_job import process_retrieve_job
from worker.runtime import WorkerRuntime, get_runtime

log = logging.getLogger(__name__)

_settings = get_settings()
#: Tries of an ingestion while Qdrant is unreachable (backoff 30 s doubling, so about 15 min).
INGEST_MAX_RETRIES = 5
_TASK_OF_KIND = {
    JobKind.CHAT: TaskName.CHAT,
    JobKind.RETRIEVE: TaskName.RETRIEVE,
    JobKind.INGEST: TaskName.INGEST,
}


def _run_job(
    job_id: str,
    work: Callable[[WorkerRuntime, str], Coroutine[Any, Any, None]],
    *,
    timeout_message: str,
    crash_code: ErrorCode,
    crash_message: str,
    retry_on: tuple[type[Exception], ...] = (),
) -> None:
    """Run a job's plain function; a time limit or a crash ends the job with a stable code
    instead of leaving it `running`."""
    runtime = get_runtime()
    try:
        runtime.run(work(runtime, job_id))
    except SoftTimeLimitExceeded:
        failure = (ErrorCode.JOB_TIMEOUT, timeout_message)
    except retry_on:
        raise
    except Exception:
        log.exception("job %s crashed", job_id)
        failure = (crash_code, crash_message)
    else:
        return
    runtime.run(runtime.jobs.fail(job_id, *failure), timeout=10)


@app.task(
    name=TaskName.CHAT,
    soft_time_limit=_settings.chat_task_time_limit_s,
    time_limit=_settings.chat_task_time_limit_s + 15,
)
def answer_chat(*, job_id: str) -> None:
    """Answer a reader's question (job state, events and history written by the pipeline)."""
    _run_job(
        job_id,
        process_chat_job,
        timeout_message="The answer took too long and was abandoned.",
        crash_code=ErrorCode.INTERNAL_ERROR,
        crash_message="The chat worker hit an unexpected error.",
    )


@app.task(
    bind=True,
    name=TaskName.INGEST,
    soft_time_limit=_settings.ingest_task_time_limit_s,
    time_limit=_settings.ingest_task_time_limit_s + 60,
    max_retries=INGEST_MAX_RETRIES,
)
def ingest_site(self: Task[Any, Any], *, job_id: str) -> None:
    """(Re-)index a Docusaurus site incrementally; retried later if Qdrant is unreachable."""
    try:
        _run_job(
            job_id,
            process_ingest_job,
            timeout_message="Ingestion exceeded its time limit.",
            crash_code=ErrorCode.INGEST_FAILED,
            crash_message="Ingestion hit an unexpected error; see logs.",
            retry_on=(IndexUnreachableError,),
        )
    except IndexUnreachableError as error:
        runtime = get_runtime()
        if self.request.retries >= INGEST_MAX_RETRIES:
            runtime.run(runtime.jobs.fail(job_id, error.code, error.message), timeout=10)
            return
        countdown = min(30 * 2**self.request.retries, 1800)
        log.warning("ingest job %s: %s; retrying in %ss", job_id, error.message, countdown)
        runtime.run(runtime.jobs.requeue(job_id, retry_in_s=countdown), timeout=10)
        raise self.retry(countdown=countdown, exc=error) from error


@app.task(
    name=TaskName.SCHEDULED_INGEST,
    soft_time_limit=_settings.ingest_task_time_limit_s,
    time_limit=_settings.ingest_task_time_limit_s + 60,
)
def scheduled_ingest() -> str:
    """Beat's nightly re-index: create the job as the API would, then run it here."""
    runtime = get_runtime()
    job = runtime.run(create_ingest_job(runtime.jobs, runtime.settings, trigger="schedule"), 10)
    with job_context(job.id):
        log.info("scheduled re-index of site %s", runtime.settings.site_name)
        ingest_site.run(job_id=job.id)
        record_job_metrics(job.id)
    return job.id


@app.task(name=TaskName.CLEANUP, soft_time_limit=120, time_limit=150)
def cleanup() -> dict[str, int]:
    """Requeue jobs whose worker or message was lost; forget expired jobs in the index."""
    runtime = get_runtime()

    async def requeue(job: Job) -> None:
        task = _TASK_OF_KIND[job.kind]
        # kombu's publish is blocking I/O: keep it off the runtime's event loop.
        await asyncio.to_thread(app.send_task, str(task), kwargs={"job_id": job.id})

    report = runtime.run(cleanup_jobs(runtime.jobs, runtime.settings, requeue=requeue), 110)
    return {
        "scanned": report.scanned,
        "requeued": len(report.requeued),
        "lost": len(report.marked_lost),
        "forgotten": report.forgotten,
    }


@app.task(name=TaskName.RETRIEVE, soft_time_limit=30, time_limit=45)
def retrieve(*, job_id: str) -> None:
    """Search the index for POST /v1/retrieve (the API waits for this job's `done`)."""
    _run_job(
        job_id,
        process_retrieve_job,
        timeout_message="The search took too long and was abandoned.",
        crash_code=ErrorCode.INTERNAL_ERROR,
        crash_message="The search hit an unexpected error.",
    )
