"""Queue and task names, and the send-only Celery client the API enqueues with.

The API never imports the worker's task modules: it sends tasks by name (`TaskName`) to a queue
(`QueueName`). The worker registers its tasks under the same names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from celery import Celery

from shared.jobs import JobKind

__all__ = ["TASK_QUEUES", "QueueName", "TaskName", "make_sender", "queue_of_kind", "task_of_kind"]


class QueueName(StrEnum):
    CHAT = "chat"  # latency-sensitive: reader questions and retrieval
    INGEST = "ingest"  # bulk: re-indexing a site


class TaskName(StrEnum):
    CHAT = "bookchat.chat.answer"
    RETRIEVE = "bookchat.chat.retrieve"
    INGEST = "bookchat.ingest.site"
    CLEANUP = "bookchat.jobs.cleanup"
    SCHEDULED_INGEST = "bookchat.ingest.scheduled"  # beat: creates the ingest job, sends it


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.CHAT: QueueName.CHAT,
    TaskName.RETRIEVE: QueueName.CHAT,
    TaskName.INGEST: QueueName.INGEST,
    # Cleanup finds dead workers: it must not wait behind an hours-long ingestion.
    TaskName.CLEANUP: QueueName.CHAT,
    TaskName.SCHEDULED_INGEST: QueueName.INGEST,
}

#: The task that runs a job of each kind (the API, the beat task and the cleanup send these).
_TASK_OF_KIND: dict[JobKind, TaskName] = {
    JobKind.CHAT: TaskName.CHAT,
    JobKind.RETRIEVE: TaskName.RETRIEVE,
    JobKind.INGEST: TaskName.INGEST,
}


def task_of_kind(kind: JobKind) -> TaskName:
    return _TASK_OF_KIND[kind]


def queue_of_kind(kind: JobKind) -> QueueName:
    return TASK_QUEUES[_TASK_OF_KIND[kind]]


def make_sender(broker_url: str, **conf: Any) -> Celery:
    """A Celery app that only sends tasks by name (no task modules imported)."""
    app = Celery("bookchat-sender", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_routes={str(name): {"queue": str(queue)} for name, queue in TASK_QUEUES.items()},
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 7 * 3600},
        **conf,
    )
    return app
