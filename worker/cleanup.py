"""Periodic cleanup of the job store: stale running jobs and expired index entries.

Policy for a job stuck in `running` (its worker died with it, e.g. the host went away, and the
broker will only redeliver the task after the long visibility timeout): once its heartbeat is
older than the stale threshold it is marked **failed** with code `worker_lost`, never requeued.
A reader's question is minutes old by then and the widget has given up; an ingestion is
re-run by the next nightly run or webhook, and both tasks refuse to work on a job that is
already terminal, so a late redelivery of the same task does nothing.

A chat job heartbeats only when it starts, so the threshold is at least its hard time limit:
a chat job older than that is dead whatever its heartbeat says. An ingestion heartbeats on
every lock renewal (a third of `ingest_lock_timeout_s`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from shared.errors import ErrorCode
from shared.jobs import RECENT_JOBS_KEY, JobKind, JobStatus, JobStore
from shared.metrics import inc
from shared.settings import Settings

__all__ = ["CleanupReport", "cleanup_jobs", "stale_after_s"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CleanupReport:
    scanned: int = 0
    marked_lost: list[str] = field(default_factory=list)
    forgotten: int = 0  # index entries whose job had already expired


def stale_after_s(settings: Settings, kind: JobKind) -> float:
    """Seconds without a heartbeat after which a running job of this kind is lost."""
    if kind is JobKind.INGEST:
        return float(max(settings.job_stale_after_s, 3 * settings.ingest_lock_timeout_s))
    return float(max(settings.job_stale_after_s, settings.chat_task_time_limit_s + 60))


async def cleanup_jobs(
    jobs: JobStore, settings: Settings, *, now: float | None = None
) -> CleanupReport:
    """Fail running jobs that lost their worker; drop index entries of expired jobs."""
    now = time.time() if now is None else now
    report = CleanupReport()
    report.forgotten += await jobs.redis.zremrangebyscore(RECENT_JOBS_KEY, "-inf", now - jobs.ttl_s)
    raw_ids = await jobs.redis.zrange(RECENT_JOBS_KEY, 0, -1)
    ids = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in raw_ids]
    # One round trip for every status; only the running ones are read in full.
    pipe = jobs.redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(jobs.key(job_id), "status")
    statuses: list[bytes | None] = await pipe.execute()
    gone = [job_id for job_id, status in zip(ids, statuses, strict=True) if status is None]
    report.scanned = len(ids) - len(gone)
    running = [
        job_id
        for job_id, status in zip(ids, statuses, strict=True)
        if status == str(JobStatus.RUNNING).encode()
    ]
    for job_id in running:
        job = await jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING:
            continue
        last_sign = job.heartbeat_at or job.updated_at
        if now - last_sign <= stale_after_s(settings, job.kind):
            continue
        await jobs.fail(
            job_id,
            ErrorCode.WORKER_LOST,
            "The worker running this job stopped responding; the job was abandoned. "
            "Submit it again.",
        )
        await inc(jobs.redis, "bookchat_jobs_marked_lost", kind=str(job.kind))
        log.warning(
            "job %s (%s) had no heartbeat for %.0fs: marked worker_lost",
            job_id,
            job.kind,
            now - last_sign,
            extra={"job_id": job_id, "session_id": job.session_id},
        )
        report.marked_lost.append(job_id)
    if gone:
        report.forgotten += await jobs.redis.zrem(RECENT_JOBS_KEY, *gone)
    return report
