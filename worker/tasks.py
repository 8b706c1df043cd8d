"""Celery tasks: thin shells that take ids and call the plain functions that do the work."""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded

from shared.errors import ErrorCode
from shared.queues import TaskName
from shared.settings import get_settings
from worker.celery_app import app
from worker.chat import process_chat_job
from worker.ingest import process_ingest_job
from worker.runtime import get_runtime

log = logging.getLogger(__name__)

_settings = get_settings()


def _fail(job_id: str, code: ErrorCode, message: str) -> None:
    runtime = get_runtime()
    runtime.run(runtime.jobs.fail(job_id, code, message), timeout=10)


@app.task(
    name=TaskName.CHAT,
    soft_time_limit=_settings.chat_task_time_limit_s,
    time_limit=_settings.chat_task_time_limit_s + 15,
)
def answer_chat(*, job_id: str) -> None:
    """Answer a reader's question (job state, events and history written by the pipeline)."""
    runtime = get_runtime()
    try:
        runtime.run(process_chat_job(runtime, job_id))
    except SoftTimeLimitExceeded:
        _fail(job_id, ErrorCode.JOB_TIMEOUT, "The answer took too long and was abandoned.")
    except Exception:
        log.exception("chat job %s crashed", job_id)
        _fail(job_id, ErrorCode.INTERNAL_ERROR, "The chat worker hit an unexpected error.")


@app.task(
    name=TaskName.INGEST,
    soft_time_limit=_settings.ingest_task_time_limit_s,
    time_limit=_settings.ingest_task_time_limit_s + 60,
)
def ingest_site(*, job_id: str) -> None:
    """(Re-)index a Docusaurus site incrementally."""
    runtime = get_runtime()
    try:
        runtime.run(process_ingest_job(runtime, job_id))
    except SoftTimeLimitExceeded:
        _fail(job_id, ErrorCode.JOB_TIMEOUT, "Ingestion exceeded its time limit.")
    except Exception:
        log.exception("ingest job %s crashed", job_id)
        _fail(job_id, ErrorCode.INGEST_FAILED, "Ingestion hit an unexpected error; see logs.")
