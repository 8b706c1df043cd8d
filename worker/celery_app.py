"""The Celery application of the workers: queues, routes, reliability settings, the beat
schedule, and the per-task job context (log fields, metrics).

Start a worker per queue so a nightly re-index never delays a reader's answer (`bookchat
worker` builds these command lines; the chat pool is BOOKCHAT_CHAT_CONCURRENCY threads):
    celery -A worker.celery_app worker -Q chat --pool threads --concurrency 200
    celery -A worker.celery_app worker -Q ingest --concurrency 1
    celery -A worker.celery_app beat
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from shared.jobs import Job
from shared.logging import bind_job_context, configure_logging
from shared.queues import TASK_QUEUES, QueueName, TaskName
from shared.redis_client import DEFAULT_REDIS_URL
from shared.settings import Settings, get_settings
from worker.schedule import beat_schedule

__all__ = ["app", "celery_config", "make_celery", "task_options"]

log = logging.getLogger(__name__)


def task_options(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per-task limits and retry options (Celery `task_annotations`), from settings.

    Every task ends within a hard limit a little above its soft one (the soft one lets the job
    be failed with a stable code first). An ingestion that finds the vector store unreachable is
    retried by Celery (`autoretry_for` on the task) after `ingest_retry_backoff_s`, doubling.
    """
    chat, ingest = settings.chat_task_time_limit_s, settings.ingest_task_time_limit_s
    options: dict[TaskName, dict[str, Any]] = {
        TaskName.CHAT: {"soft_time_limit": chat, "time_limit": chat + 15},
        TaskName.RETRIEVE: {"soft_time_limit": 30, "time_limit": 45},
        TaskName.INGEST: {
            "soft_time_limit": ingest,
            "time_limit": ingest + 60,
            "retry_backoff": settings.ingest_retry_backoff_s,
        },
        # Creates the job and sends the ingestion: seconds, not the ingestion's hours.
        TaskName.SCHEDULED_INGEST: {"soft_time_limit": 60, "time_limit": 90},
        TaskName.CLEANUP: {"soft_time_limit": 120, "time_limit": 150},
        # The API waits report_timeout_s for a report; one still running after that is abandoned.
        TaskName.REPORT: {
            "soft_time_limit": settings.report_timeout_s + 30,
            "time_limit": settings.report_timeout_s + 60,
        },
        # Deletes by age in four statements; a first run over a long backlog may take minutes.
        TaskName.HISTORY_RETENTION: {"soft_time_limit": 600, "time_limit": 660},
    }
    return {str(name): values for name, values in options.items()}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The workers' Celery configuration."""
    longest = max(settings.chat_task_time_limit_s, settings.ingest_task_time_limit_s)
    return {
        "broker_url": settings.redis_url or DEFAULT_REDIS_URL,
        # kombu's Redis transport with a channel that closes when Redis is gone: kombu's own
        # made a broker blip end the worker process (worker/broker.py).
        "broker_transport": "worker.broker:Transport",
        # Each queue bound to an exchange of its own name with its name as key: what Celery
        # routes by anyway (it publishes to the default exchange with the queue's name), and
        # what the banner then shows. `Queue(name)` alone bound every queue to the default
        # queue's exchange and key (`ingest exchange=chat key=chat`).
        "task_queues": [Queue(str(q), Exchange(str(q)), routing_key=str(q)) for q in QueueName],
        "task_default_queue": str(QueueName.CHAT),
        "task_routes": {str(name): {"queue": str(queue)} for name, queue in TASK_QUEUES.items()},
        "task_annotations": task_options(settings),
        # Our own job store holds results and state; Celery keeps none.
        "task_ignore_result": True,
        # A task is acknowledged only when it ends, and given back if its worker dies, so a
        # killed worker's job is redelivered instead of lost. Handlers are idempotent.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # With late acks, a task still running when the broker connection drops will be
        # redelivered anyway: cancel it rather than let two copies run (Celery 5.1+ advice;
        # the default flips to True in Celery 6).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Redis redelivers unacknowledged tasks after the visibility timeout: keep it above
        # the longest task, or a slow ingestion would run twice.
        "broker_transport_options": {"visibility_timeout": longest + 600},
        "broker_connection_retry_on_startup": True,
        # Defaults for any task without limits of its own in `task_options`: nothing runs
        # unbounded.
        "task_soft_time_limit": 300,
        "task_time_limit": 330,
        # Task events only feed Flower (which turns them on itself while it runs, and the
        # compose workers pass -E); each is a message per task state, so they are opt-in.
        "worker_send_task_events": settings.celery_task_events,
        "task_send_sent_event": settings.celery_task_events,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        "imports": ["worker.tasks"],
    }


def make_celery(settings: Settings | None = None) -> Celery:
    """The workers' Celery app. Its configuration is built from `settings` (default: the
    process's settings) when first needed, not when this module is imported."""
    celery = Celery("bookchat")
    celery.add_defaults(lambda: celery_config(settings or get_settings()))
    return celery


app = make_celery()


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """Our format (JSON or human) for worker and beat; Celery then leaves logging alone."""
    settings = get_settings()
    configure_logging(
        level=settings.log_level, json=settings.log_json, secrets=settings.secret_values()
    )


# task id -> (monotonic start, seconds its job waited in the queue) of a task whose job was not
# yet finished, for the run-time and queue-wait metrics (thread pool: several at once). A
# redelivered task of a finished job is not counted twice.
_started: dict[str, tuple[float, float]] = {}
_started_lock = threading.Lock()
# job id -> the chat job as its task's prerun read it, taken by the task itself
# (`job_read_at_start`): the task does not read it again (postrun's metrics still read the
# finished job once).
_read_at_start: dict[str, Job] = {}


@signals.task_prerun.connect
def _job_context_on_start(
    task_id: str, task: Any = None, kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    """Every log line of the task carries the job's id and session (read from the job store,
    which the API wrote before enqueueing; the task's kwargs carry the job id). A chat task
    takes the job read here rather than reading it again (`job_read_at_start`)."""
    job_id = (kwargs or {}).get("job_id")
    session_id = None
    if job_id:
        from worker.runtime import get_runtime

        runtime = get_runtime()

        try:
            job = runtime.run(runtime.jobs.get(job_id), 5)
            if job is not None:
                session_id = job.session_id
                with _started_lock:
                    if not job.status.terminal:
                        waited = max(0.0, time.time() - job.created_at)
                        _started[task_id] = (time.monotonic(), waited)
                    if getattr(task, "name", None) == TaskName.CHAT:
                        _read_at_start[job_id] = job
        except Exception:
            log.warning("could not read job %s", job_id, exc_info=True)
    bind_job_context(job_id, session_id)


@signals.task_postrun.connect
def _metrics_on_end(task_id: str, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    job_id = (kwargs or {}).get("job_id")
    with _started_lock:
        started = _started.pop(task_id, None)
        if job_id:
            _read_at_start.pop(job_id, None)  # not taken (the task failed before reading it)
    if job_id and started is not None:
        began, waited = started
        record_job_metrics(job_id, time.monotonic() - began, queue_wait_s=waited)
    bind_job_context(None, None)


def job_read_at_start(job_id: str) -> Job | None:
    """The chat job as this task's prerun read it (None: not read, or already taken)."""
    with _started_lock:
        return _read_at_start.pop(job_id, None)


def record_job_metrics(
    job_id: str, run_seconds: float | None = None, *, queue_wait_s: float | None = None
) -> None:
    """Record a finished job's figures in Redis for the API's /metrics (`run_seconds` and
    `queue_wait_s` as the task measured them). Never raises: metrics must not fail a job."""
    from shared.metrics import record_job_end
    from worker.runtime import get_runtime

    runtime = get_runtime()

    async def record() -> None:
        job = await runtime.jobs.get(job_id)
        if job is not None and job.status.terminal:
            await record_job_end(
                runtime.redis, job, run_seconds=run_seconds, queue_wait_s=queue_wait_s
            )

    try:
        runtime.run(record(), 5)
    except Exception:
        log.warning("could not record metrics of job %s", job_id, exc_info=True)
