"""Retrieval as a job: POST /v1/retrieve's search, run where the embedder and the store live.

The API never loads the embedder or opens the vector store, so a retrieval request travels the
chat queue like a question does; it is fast (one embedding, one Qdrant round trip). The ranking
is exactly `bookchat search`'s: `Retriever.search(query, limit=, site=settings.site_name)`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from shared.errors import BookchatError, ErrorCode
from shared.passages import Passage
from worker.retrieval import Retriever

__all__ = ["PUBLIC_FIELDS", "RetrieveRequest", "process_retrieve_job", "retrieve_passages"]

log = logging.getLogger(__name__)

#: What a passage shows outside the worker (as `bookchat search --json`).
PUBLIC_FIELDS = ("path", "url", "heading", "title", "score", "text")


@dataclass(frozen=True, slots=True)
class RetrieveRequest:
    query: str
    limit: int = 5
    path_prefix: str | None = None
    version: str | None = None
    locale: str | None = None

    @classmethod
    def from_meta(cls, raw: dict[str, Any]) -> RetrieveRequest:
        filters = raw.get("filters") or {}
        return cls(
            query=str(raw["query"]),
            limit=int(raw.get("limit") or 5),
            path_prefix=filters.get("path_prefix"),
            version=filters.get("version"),
            locale=filters.get("locale"),
        )


def public_passage(passage: Passage) -> dict[str, Any]:
    return passage.model_dump(include=set(PUBLIC_FIELDS))


def retrieve_passages(
    retriever: Retriever, request: RetrieveRequest, *, site: str
) -> list[dict[str, Any]]:
    """The best passages for the request, best first, in `bookchat search --json`'s shape."""
    hits = retriever.search(
        request.query,
        limit=request.limit,
        site=site,
        path_prefix=request.path_prefix,
        version=request.version,
        locale=request.locale,
    )
    return [public_passage(hit) for hit in hits]


async def process_retrieve_job(runtime: Any, job_id: str) -> None:
    """Run one queued retrieval job; its result is `{"passages": [...]}`.

    `runtime` is a `worker.runtime.WorkerRuntime` (anything with `settings`, `jobs`,
    `retriever`). A job the API already gave up on (failed on timeout) is skipped.
    """
    jobs = runtime.jobs
    job = await jobs.get(job_id)
    if job is None or job.status.terminal:
        log.info("retrieve job %s is gone or finished; skipped", job_id)
        return
    request = RetrieveRequest.from_meta(job.meta["request"])
    await jobs.mark_running(job_id)
    try:
        passages = await asyncio.to_thread(
            retrieve_passages, runtime.retriever, request, site=runtime.settings.site_name
        )
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return
    except Exception as error:  # Qdrant errors: a missing collection, an unreachable server
        log.exception("retrieve job %s: search failed", job_id)
        await jobs.fail(
            job_id,
            ErrorCode.INDEX_UNAVAILABLE,
            f"The index could not be searched ({type(error).__name__}); is the site ingested?",
        )
        return
    await jobs.succeed(job_id, {"passages": passages})
