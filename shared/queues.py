"""Queue and task names, which task runs each job kind, the send-only Celery client the API
enqueues with, and the one place that reads the broker's own keys.

The API never imports the worker's task modules: it sends tasks by name (`TaskName`) to a queue
(`QueueName`). The worker registers its tasks under the same names.

Celery's Redis transport keeps each queue as a Redis list named after the queue, each message a
JSON document whose headers carry the task's kwargs (`kwargsrepr`, so the job id). Only
`queue_depths`, `queue_state` and `job_ids_waiting` below rely on that layout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from shared.job_reader import JobReader
from shared.jobs import JobKind

__all__ = [
    "TASK_QUEUES",
    "QueueName",
    "QueueState",
    "TaskName",
    "job_ids_waiting",
    "make_sender",
    "queue_depths",
    "queue_of_kind",
    "queue_state",
    "task_of_kind",
]


class QueueName(StrEnum):
    CHAT = "chat"  # latency-sensitive: reader questions and retrieval
    INGEST = "ingest"  # bulk: re-indexing a site


class TaskName(StrEnum):
    CHAT = "bookchat.chat.answer"
    RETRIEVE = "bookchat.chat.retrieve"
    INGEST = "bookchat.ingest.site"
    CLEANUP = "bookchat.jobs.cleanup"
    SCHEDULED_INGEST = "bookchat.ingest.scheduled"  # beat: creates the ingest job, sends it
    REPORT = "bookchat.report.build"
    HISTORY_RETENTION = "bookchat.history.retention"  # beat: deletes history past retention


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.CHAT: QueueName.CHAT,
    TaskName.RETRIEVE: QueueName.CHAT,
    TaskName.INGEST: QueueName.INGEST,
    # Cleanup finds dead workers: it must not wait behind an hours-long ingestion.
    TaskName.CLEANUP: QueueName.CHAT,
    TaskName.SCHEDULED_INGEST: QueueName.INGEST,
    # Both are short database work (a report's embeddings are cached), and neither should wait
    # behind an hours-long ingestion.
    TaskName.REPORT: QueueName.CHAT,
    TaskName.HISTORY_RETENTION: QueueName.CHAT,
}

#: The task that runs a job of each kind (the API, the beat task and the cleanup send these).
_TASK_OF_KIND: dict[JobKind, TaskName] = {
    JobKind.CHAT: TaskName.CHAT,
    JobKind.RETRIEVE: TaskName.RETRIEVE,
    JobKind.INGEST: TaskName.INGEST,
    JobKind.REPORT: TaskName.REPORT,
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


async def queue_depths(
    redis: Redis, queues: Iterable[QueueName] = tuple(QueueName)
) -> dict[str, int]:
    """Messages waiting in each queue (not those delivered and still unacknowledged)."""
    names = [str(queue) for queue in queues]
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    lengths: list[int] = await pipe.execute()
    return dict(zip(names, (int(n) for n in lengths), strict=True))


#: A job id in a task message (the kwargs carry `job_id`; ids are UUIDs).
_JOB_ID = re.compile(rb"job_id[^0-9a-f]{1,12}([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})")


@dataclass(frozen=True, slots=True)
class QueueState:
    """A queue's depth and how long its oldest waiting message has waited (seconds; 0 when
    the queue is empty or its oldest message names no job)."""

    depth: int
    oldest_wait_s: float


async def queue_state(redis: Redis, queue: QueueName, *, now: float | None = None) -> QueueState:
    """The queue's depth and its oldest waiting job's age, in one round trip (two when the
    queue is not empty: the job's `created_at`). kombu pushes on the left and pops on the
    right, so the oldest message is the list's last."""
    pipe = redis.pipeline(transaction=False)
    pipe.llen(str(queue))
    pipe.lindex(str(queue), -1)
    depth, oldest = await pipe.execute()
    if not oldest:
        return QueueState(int(depth), 0.0)
    match = _JOB_ID.search(oldest)
    if match is None:
        return QueueState(int(depth), 0.0)
    created = await redis.hget(JobReader.key(match.group(1).decode()), "created_at")
    if created is None:
        return QueueState(int(depth), 0.0)
    waited = (time.time() if now is None else now) - float(created)
    return QueueState(int(depth), max(0.0, waited))


async def job_ids_waiting(redis: Redis, job_ids: Iterable[str]) -> set[str]:
    """Which of these jobs have a task message waiting in a queue. Messages delivered to a
    worker but not yet acknowledged are not in the lists, so they do not count."""
    pipe = redis.pipeline(transaction=False)
    for queue in QueueName:
        pipe.lrange(str(queue), 0, -1)
    replies: list[list[bytes]] = await pipe.execute()
    raw = b"\n".join(b"\n".join(reply) for reply in replies)
    return {job_id for job_id in job_ids if job_id.encode() in raw}
