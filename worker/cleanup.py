"""Periodic cleanup of the job store: jobs whose worker or task message was lost, and expired
index entries.

Policy: an accepted job is never dropped silently.

- A job stuck in `running` whose heartbeat is older than the stale threshold lost its worker
  (the whole worker process was killed or its host went away; a killed *pool child* is requeued
  by Celery at once through `task_reject_on_worker_lost`). Its task message sits unacknowledged
  in Redis until the visibility timeout (hours), so the cleanup **requeues** the job: status
  back to `queued` (an event `{"status": "queued", "requeued": true}` tells a follower that the
  tokens streamed so far are void) and a new task message. The task is idempotent (history
  message ids derive from the job id; a terminal job is never run again), so the late
  redelivery of the old message does nothing.
- A job still `queued` after the stale threshold whose message is not waiting in its queue lost
  its message (delivered to a worker that died before starting it, a broker restart without
  persistence, a send that failed half-way): requeued the same way.
- A job that already ran `MAX_ATTEMPTS` times and lost its worker each time is failed with code
  `worker_lost` instead (a job that crashes its worker must not crash workers forever), as is
  every stale job when no `requeue` function is given.

Chat jobs heartbeat every few seconds while they run, but the threshold for them is still at
least their hard time limit, so a slow answer is never run twice. An ingestion heartbeats on
every lock renewal (a third of `ingest_lock_timeout_s`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.errors import ErrorCode
from shared.jobs import Job, JobKind, JobStatus, JobStore
from shared.metrics import inc
from shared.queues import job_ids_waiting
from shared.settings import Settings

__all__ = ["MAX_ATTEMPTS", "CleanupReport", "cleanup_jobs", "stale_after_s"]

log = logging.getLogger(__name__)

#: Runs of a job whose worker died each time, after which it is failed, not requeued.
MAX_ATTEMPTS = 3


@dataclass(slots=True)
class CleanupReport:
    scanned: int = 0
    marked_lost: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    forgotten: int = 0  # index entries whose job had already expired


def stale_after_s(settings: Settings, kind: JobKind) -> float:
    """Seconds without a heartbeat after which a running job of this kind is lost."""
    if kind is JobKind.INGEST:
        return float(max(settings.job_stale_after_s, 3 * settings.ingest_lock_timeout_s))
    return float(max(settings.job_stale_after_s, settings.chat_task_time_limit_s + 60))


async def cleanup_jobs(
    jobs: JobStore,
    settings: Settings,
    *,
    redis: Redis,
    now: float | None = None,
    requeue: Callable[[Job], Awaitable[None]] | None = None,
    every_worker_lost: bool = False,
) -> CleanupReport:
    """Requeue (or fail) jobs that lost their worker or their task message; drop index
    entries of expired jobs. `requeue` sends the job's task again; `redis` is the broker's
    (the queues are read for lost messages) and the metrics store's.

    `every_worker_lost`: the caller knows no worker is running (`bookchat dev` starting after
    a killed one: its in-process worker was the only one), so unfinished jobs are lost at once,
    without waiting out the stale threshold."""
    now = time.time() if now is None else now
    report = CleanupReport()
    report.forgotten += await jobs.forget_expired(now)
    # The recent index only for what it can tell (its entries of expired jobs), the uncapped
    # index of unfinished jobs for the candidates: a job lost before 10,000 newer ones is
    # still found (issue 30).
    statuses = {**await jobs.recent_statuses(), **await jobs.recent_statuses(unfinished=True)}
    gone = [job_id for job_id, status in statuses.items() if status is None]
    report.scanned = len(statuses) - len(gone)
    unfinished = {JobStatus.RUNNING, JobStatus.QUEUED}
    candidates = [job_id for job_id, status in statuses.items() if status in unfinished]
    await jobs.finished(
        [job_id for job_id, status in statuses.items() if status and status not in unfinished]
    )
    in_broker: set[str] | None = None  # read once, only if a queued job is old enough
    for job_id in candidates:
        job = await jobs.get(job_id)
        if job is None or job.status.terminal:
            continue
        last_sign = job.heartbeat_at or job.updated_at
        if not every_worker_lost and now - last_sign <= stale_after_s(settings, job.kind):
            continue
        if job.status is JobStatus.QUEUED:
            if in_broker is None:
                # A worker starts what it reserves at once (prefetch = concurrency), so a job
                # still `queued` long after its message was delivered lost it with its worker.
                in_broker = await job_ids_waiting(redis, candidates)
            if job_id in in_broker:
                continue  # its message is waiting or being worked on: a deep queue, not a loss
        if requeue is not None and job.attempts < MAX_ATTEMPTS:
            await _requeue(jobs, redis, job, requeue)
            report.requeued.append(job_id)
            continue
        await jobs.fail(
            job_id,
            ErrorCode.WORKER_LOST,
            "The worker running this job stopped responding; the job was abandoned. "
            "Submit it again.",
        )
        await inc(redis, "bookchat_jobs_marked_lost", kind=str(job.kind))
        log.warning(
            "job %s (%s, %s, %d attempts) had no sign of life for %.0fs: marked worker_lost",
            job_id,
            job.kind,
            job.status,
            job.attempts,
            now - last_sign,
            extra={"job_id": job_id, "session_id": job.session_id},
        )
        report.marked_lost.append(job_id)
    report.forgotten += await jobs.forget(gone)
    return report


async def _requeue(
    jobs: JobStore, redis: Redis, job: Job, requeue: Callable[[Job], Awaitable[None]]
) -> None:
    was = job.status
    await jobs.requeue(job.id)
    await requeue(job)
    await inc(redis, "bookchat_jobs_requeued", kind=str(job.kind))
    log.warning(
        "job %s (%s) was %s with no sign of life: requeued (attempts so far: %d)",
        job.id,
        job.kind,
        was,
        job.attempts,
        extra={"job_id": job.id, "session_id": job.session_id},
    )
