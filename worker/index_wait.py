"""A question asked while its site's first index is being built waits for that index.

The reader's first question after `bookchat dev` (or after a new deployment's first ingestion
starts) is not failed: the chat job stays `queued`, tells its followers why (a `status` event
`{"status": "indexing", "ingest_job_id": ...}` and progress `{"stage": "indexing", "message":
"Indexing the site…"}`, which the widget shows), and is answered as soon as the ingestion ends.
The wait is bounded by `BOOKCHAT_INDEX_WAIT_S`; past it the job fails with `index_building`
("ask again in a minute"), never with the store's "Collection not found".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from shared.errors import BookchatError, ErrorCode
from shared.index_state import building_job
from shared.jobs import EventType, Job
from worker.chat_job import process_chat_job

if TYPE_CHECKING:
    from worker.runtime import ChatRuntime

__all__ = ["INDEXING_MESSAGE", "answer_when_indexed", "wait_for_index"]

log = logging.getLogger(__name__)

INDEXING_MESSAGE = "Indexing the site…"
SEARCHING_MESSAGE = "Searching the docs…"
#: How often a waiting question looks at the ingestion again (one Redis read each time).
POLL_S = 0.5


async def wait_for_index(runtime: ChatRuntime, job_id: str) -> bool:
    """Return once the site can be searched (True if that meant waiting); raise
    `index_building` after the bounded wait."""
    jobs, settings = runtime.jobs, runtime.settings
    ingest_id = await building_job(runtime.redis, jobs, settings.site_name)
    if ingest_id is None:
        return False
    log.info("chat job %s waits for the site's first index (ingest job %s)", job_id, ingest_id)
    await jobs.emit(job_id, EventType.STATUS, {"status": "indexing", "ingest_job_id": ingest_id})
    await jobs.set_progress(job_id, {"stage": "indexing", "message": INDEXING_MESSAGE})
    deadline = time.monotonic() + settings.index_wait_s
    # Polled, not subscribed: the ingestion's end is one field of its job hash, read twice a
    # second by each waiting question, only during a site's first ingestion.
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        if await building_job(runtime.redis, jobs, settings.site_name) is None:
            await jobs.set_progress(job_id, {"stage": "indexed", "message": SEARCHING_MESSAGE})
            return True
    raise BookchatError(
        ErrorCode.INDEX_BUILDING,
        "The site is still being indexed for the first time; ask again in a minute.",
    )


async def answer_when_indexed(runtime: ChatRuntime, job_id: str, *, job: Job | None = None) -> None:
    """`process_chat_job`, after the site's first index exists. `job`: the job as the task
    just read it (None: read here). It is handed on unless waiting for the index changed it
    (one read per answer)."""
    if job is None:
        job = await runtime.jobs.get(job_id)
    if job is not None and not job.status.terminal:
        try:
            if await wait_for_index(runtime, job_id):
                job = None  # its progress changed while it waited: read it again
        except BookchatError as error:
            log.warning("chat job %s failed: %s", job_id, error.message)
            await runtime.jobs.fail(job_id, error.code, error.message)
            return
    await process_chat_job(runtime, job_id, job=job)
