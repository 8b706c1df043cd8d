"""Retrieval as a job: POST /v1/retrieve's search, run where the embedder and the store live.

The API never loads the embedder or opens the vector store, so a retrieval request travels the
chat queue like a question does; it is fast (one embedding, one Qdrant round trip). The ranking
is exactly `bookchat search`'s: `Retriever.search(query, limit=, site=settings.site_name)`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from shared.errors import BookchatError, ErrorCode
from shared.job_models import PublicPassage, RetrieveFilters, RetrieveRequest, RetrieveResult
from shared.passages import Passage
from shared.vectorstore import is_store_error
from worker.retrieval import Retriever

if TYPE_CHECKING:
    from worker.runtime import RetrieveRuntime

__all__ = ["process_retrieve_job", "public_passage", "retrieve_passages"]

log = logging.getLogger(__name__)


def public_passage(passage: Passage) -> PublicPassage:
    """What a passage shows outside the worker (as `bookchat search --json`)."""
    return PublicPassage.model_validate(passage, from_attributes=True)


def retrieve_passages(
    retriever: Retriever, request: RetrieveRequest, *, site: str
) -> list[PublicPassage]:
    """The best passages for the request, best first, in `bookchat search --json`'s shape."""
    filters = request.filters or RetrieveFilters()
    hits = retriever.search(
        request.query,
        limit=request.limit,
        site=site,
        path_prefix=filters.path_prefix,
        version=filters.version,
        locale=filters.locale,
    )
    return [public_passage(hit) for hit in hits]


async def process_retrieve_job(runtime: RetrieveRuntime, job_id: str) -> None:
    """Run one queued retrieval job; its result is a `RetrieveResult`. A job the API already
    gave up on (failed on timeout) is skipped."""
    jobs = runtime.jobs
    request = await jobs.start(job_id, RetrieveRequest)
    if request is None:
        return
    try:
        passages = await asyncio.to_thread(
            retrieve_passages, runtime.retriever, request, site=runtime.settings.site_name
        )
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return
    except Exception as error:
        if not is_store_error(error):
            raise  # a bug of ours: the task logs it and fails the job with internal_error
        log.exception("retrieve job %s: search failed", job_id)
        await jobs.fail(
            job_id,
            ErrorCode.INDEX_UNAVAILABLE,
            f"The index could not be searched ({type(error).__name__}); is the site ingested?",
        )
        return
    await jobs.succeed(job_id, RetrieveResult(passages=passages).model_dump(mode="json"))
