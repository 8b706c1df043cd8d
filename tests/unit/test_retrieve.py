"""POST /v1/retrieve with no services: fakeredis job store, in-memory broker, and the worker's
plain function (worker/retrieve_job.py) playing the worker over an in-memory Qdrant index."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.deps import AppState
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import index_chunks
from shared.job_models import RetrieveRequest
from shared.jobs import JobKind, JobStatus, JobStore
from shared.settings import Settings
from shared.vectorstore import VectorStore
from tests.unit.test_retrieval import ALIAS, corpus
from worker.retrieval import Retriever
from worker.retrieve_job import process_retrieve_job, retrieve_passages

pytestmark = pytest.mark.unit


@dataclass
class Runtime:
    """What `process_retrieve_job` needs of a worker runtime."""

    settings: Settings
    jobs: JobStore
    retriever: Retriever


@pytest.fixture
def retriever(store: VectorStore) -> Retriever:
    embedder = HashEmbedder(64)
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    return Retriever(store, embedder, ALIAS)


@contextlib.asynccontextmanager
async def worker(state: AppState, retriever: Retriever) -> AsyncIterator[list[str]]:
    """Runs every queued retrieve job as the Celery task would; yields the ids it ran.

    Stopped by a flag as well as by cancelling: on Python 3.11 redis-py's
    `asyncio.wait_for(..., socket_timeout)` returns normally when the cancel lands as the
    command completes (CPython gh-86296, fixed in 3.12), so a cancel alone may be lost."""
    runtime = Runtime(state.settings, state.jobs, retriever)
    done: list[str] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            async for key in state.jobs.redis.scan_iter("bookchat:job:*"):
                name = key.decode()
                if name.endswith(":events"):
                    continue
                job = await state.jobs.get(name.rsplit(":", 1)[1])
                if job and job.kind is JobKind.RETRIEVE and job.status is JobStatus.QUEUED:
                    done.append(job.id)  # before: the reply may end the test mid-await
                    await process_retrieve_job(runtime, job.id)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    try:
        yield done
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_endpoint_returns_the_same_ranking_as_search(
    client: httpx.AsyncClient,
    state: AppState,
    retriever: Retriever,
) -> None:
    query = "site configuration options"
    expected = retriever.search(query, limit=4, site=state.settings.site_name)
    async with worker(state, retriever) as ran:
        response = await client.post("/v1/retrieve", json={"query": query, "limit": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(p["path"], p["heading"]) for p in body] == [(h.path, h.heading) for h in expected]
    assert [p["score"] for p in body] == pytest.approx([h.score for h in expected])
    assert set(body[0]) == {"path", "url", "heading", "title", "score", "text"}
    assert len(ran) == 1


async def test_filters_reach_the_search(
    client: httpx.AsyncClient,
    state: AppState,
    retriever: Retriever,
) -> None:
    async with worker(state, retriever):
        response = await client.post(
            "/v1/retrieve",
            json={
                "query": "site configuration options",
                "limit": 10,
                "filters": {"path_prefix": "docs/guides/"},
            },
        )
        none = await client.post(
            "/v1/retrieve", json={"query": "site configuration", "filters": {"locale": "fr"}}
        )
    assert {p["path"] for p in response.json()} == {
        "docs/guides/deploy.md",
        "docs/guides/search.md",
    }
    assert none.status_code == 200
    assert none.json() == []


async def test_no_worker_means_504_with_a_stable_code_and_the_job_is_abandoned(
    client: httpx.AsyncClient,
    state: AppState,
) -> None:
    state.settings.retrieve_timeout_s = 0.3
    response = await client.post("/v1/retrieve", json={"query": "anything"})
    assert response.status_code == 504
    assert response.json()["code"] == "retrieve_timeout"
    assert response.headers["retry-after"]
    ids = [k.decode() async for k in state.jobs.redis.scan_iter("bookchat:job:*")]
    job = await state.jobs.get(next(k for k in ids if not k.endswith(":events")).rsplit(":")[-1])
    assert job is not None
    assert job.status is JobStatus.FAILED  # the worker will skip it


async def test_a_failed_search_is_a_503_with_the_jobs_code(
    client: httpx.AsyncClient,
    state: AppState,
    store: VectorStore,
) -> None:
    missing = Retriever(store, HashEmbedder(64), "nothing-here")
    async with worker(state, missing):
        response = await client.post("/v1/retrieve", json={"query": "anything"})
    assert response.status_code == 503
    assert response.json()["code"] == "index_unavailable"


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "ok", "limit": 0},
        {"query": "ok", "limit": 51},
        {"query": "ok", "filters": {"folder": "docs"}},
        {"query": "ok", "extra": 1},
    ],
)
async def test_bad_input_is_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/retrieve", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.usefixtures("one_rate_window")
async def test_rate_limit_applies(
    client: httpx.AsyncClient,
    state: AppState,
) -> None:
    state.settings.rate_limit_ip_per_minute = 1
    state.settings.retrieve_timeout_s = 0.1
    await client.post("/v1/retrieve", json={"query": "first"})
    limited = await client.post("/v1/retrieve", json={"query": "second"})
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"


def test_plain_function_matches_retriever_search(retriever: Retriever) -> None:
    request = RetrieveRequest(query="deploy the site configuration output", limit=3)
    rows = retrieve_passages(retriever, request, site="default")
    hits = retriever.search(request.query, limit=3, site="default")
    assert [r.path for r in rows] == [h.path for h in hits]
    assert rows[0].path == "docs/guides/deploy.md"


async def test_a_bug_in_the_search_is_no_index_unavailable(state: AppState) -> None:
    """A `TypeError` in the search is raised to the task (which logs it and fails the job with
    `internal_error`), not reported as the index being down."""

    class BuggyStore:
        def current(self, alias: str) -> None:
            return None  # no stored space to check: the search itself is what fails

        def search(self, collection: str, queries: object) -> object:
            raise TypeError("search() got an unexpected keyword argument 'prefetch'")

    job = await state.jobs.create(
        JobKind.RETRIEVE, meta={"request": RetrieveRequest(query="anything").model_dump()}
    )
    broken = Retriever(BuggyStore(), HashEmbedder(64), ALIAS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await process_retrieve_job(Runtime(state.settings, state.jobs, broken), job.id)
    stored = await state.jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.RUNNING  # left for the task to fail as internal_error
    assert stored.error is None
