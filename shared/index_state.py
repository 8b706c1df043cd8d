"""Whether a site's index can answer yet: the first ingestion of a site is "building".

A site that was never indexed cannot answer; before this record existed, a question asked during
the first ingestion failed with `index_unavailable` (the store's "Collection not found"). Now:

- whoever queues an ingestion of a site not yet known `ready` records it `building` with the
  job's id (`note_ingest_queued`: `bookchat dev`, `POST /v1/ingestions`, the nightly task);
- the ingestion itself records `ready` when it finds an index already there or when it succeeds
  (`mark_ready`), so the record converges whoever built the index;
- readers ask `building_job`: the id of the ingest job the site is waiting for, or None. The
  answer is derived from that job's own state, so a failed or crashed ingestion never leaves a
  site "building" for good, and a site with no record (indexed by `bookchat ingest` before any
  job ran) is treated as it always was.

Redis hash `bookchat:index:<site>`: `state` (building | ready), `job_id`, `updated_at`, and
`commit` and `ref` (the git commit indexed last and the branch fetched, for a site from a
repository: `/readyz` shows the commit, the push webhook matches pushes to the branch).
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from shared.jobs import JobStore

__all__ = [
    "BUILDING",
    "READY",
    "building_job",
    "hand_over",
    "index_key",
    "indexed_commit",
    "mark_ready",
    "note_ingest_queued",
]

BUILDING = "building"
READY = "ready"


def index_key(site: str) -> str:
    return f"bookchat:index:{site}"


async def note_ingest_queued(redis: Redis, jobs: JobStore, site: str, job_id: str) -> bool:
    """Record `site` as building by `job_id`, unless its index is known ready or an earlier
    ingestion it waits for is still unfinished (the later job will be skipped as
    `already_running`). True if recorded."""
    key = index_key(site)
    raw: Any = await redis.hget(key, "state")
    if raw in (READY, READY.encode()) or await building_job(redis, jobs, site) is not None:
        return False
    await redis.hset(key, mapping={"state": BUILDING, "job_id": job_id, "updated_at": time.time()})
    return True


async def mark_ready(
    redis: Redis, site: str, *, commit: str | None = None, ref: str | None = None
) -> None:
    """The site's index exists and can be searched; ``commit`` and ``ref``: the git commit it
    was built from and the branch fetched (a site from a repository), kept until an ingestion
    records others."""
    updated = time.time()
    if commit and ref:
        await redis.hset(
            index_key(site),
            mapping={"state": READY, "updated_at": updated, "commit": commit, "ref": ref},
        )
    else:
        await redis.hset(index_key(site), mapping={"state": READY, "updated_at": updated})


async def indexed_commit(redis: Redis, site: str) -> tuple[str | None, str | None]:
    """The git commit the site's index was last built from and the ref fetched for it (None:
    not from a repository)."""
    raw: Any = await redis.hmget(index_key(site), ["commit", "ref"])
    commit, ref = (v.decode() if isinstance(v, bytes) else v for v in raw)
    return commit, ref


async def hand_over(redis: Redis, site: str, skipped_job: str, running_job: str) -> None:
    """`skipped_job` ended at once because `running_job` indexes the site: a site recorded as
    building by the first now waits for the second."""
    raw: Any = await redis.hget(index_key(site), "job_id")
    if (raw.decode() if isinstance(raw, bytes) else raw) == skipped_job:
        await redis.hset(index_key(site), "job_id", running_job)


async def building_job(redis: Redis, jobs: JobStore, site: str) -> str | None:
    """The id of the unfinished ingestion a never-indexed `site` waits for, else None."""
    raw: Any = await redis.hmget(index_key(site), ["state", "job_id"])
    state, job_id = (v.decode() if isinstance(v, bytes) else v for v in raw)
    if state != BUILDING or not job_id:
        return None
    job = await jobs.get(job_id)
    if job is None or job.status.terminal:
        return None
    return str(job_id)
