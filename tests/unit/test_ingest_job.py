"""The ingestion job around the indexer: an unreachable vector store is retried, not failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import fakeredis
import pytest
from pydantic import SecretStr
from qdrant_client import QdrantClient

from ingestion_jobs.embedding import HashEmbedder
from shared.job_models import IngestRequest
from shared.jobs import JobKind, JobStatus, JobStore
from shared.settings import Settings
from shared.vectorstore.edge import EdgeStore
from shared.vectorstore.server import QdrantServerStore
from worker.ingest_job import IndexUnreachableError, process_ingest_job

pytestmark = pytest.mark.unit


async def test_unreachable_qdrant_leaves_the_job_for_a_retry(settings: Settings) -> None:
    jobs = JobStore(fakeredis.FakeAsyncRedis(), ttl_s=600)
    job = await jobs.create(
        JobKind.INGEST, meta={"request": IngestRequest.for_site(settings).model_dump(mode="json")}
    )
    closed_port = QdrantServerStore(QdrantClient(url="http://127.0.0.1:1", timeout=2))
    runtime = SimpleNamespace(
        settings=settings, jobs=jobs, redis=jobs.redis, store=closed_port, embedder=HashEmbedder()
    )
    with pytest.raises(IndexUnreachableError):
        await process_ingest_job(runtime, job.id)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.RUNNING  # not failed: the task requeues it for later


async def test_requeue_tells_followers_to_start_over(settings: Settings) -> None:
    jobs = JobStore(fakeredis.FakeAsyncRedis(), ttl_s=600)
    job = await jobs.create(JobKind.INGEST)
    await jobs.mark_running(job.id)
    await jobs.requeue(job.id, retry_in_s=30)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.QUEUED
    last = (await jobs.events(job.id))[-1]
    assert last.data == {"status": "queued", "requeued": True, "retry_in_s": 30}


def test_the_job_result_carries_the_reader_warnings() -> None:
    from ingestion_jobs.documents import ReadWarning
    from ingestion_jobs.indexer import IngestReport
    from worker.ingest_job import ingest_result

    report = IngestReport(warnings=[ReadWarning("docusaurus.config.ts", "config.baseUrl", "m")])
    result = ingest_result(report, "default")
    assert [(w.path, w.rule) for w in result.warnings] == [
        ("docusaurus.config.ts", "config.baseUrl")
    ]


class _GatedEmbedder(HashEmbedder):
    """The hash embedder whose first batch waits for the test: an ingestion held mid-way."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.go = threading.Event(), threading.Event()

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.go.wait(60)
        return super().embed_passages(texts)


async def test_a_push_during_an_ingestion_ends_on_the_newest_commit(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.unit.test_site_repo import commit_all, make_remote

    bare, work = make_remote(tmp_path)
    (work / "docs").mkdir()
    (work / "docs" / "a.md").write_text("# A\n\nFirst page.\n")
    commit_all(work, "first")
    settings.site_repo = SecretStr(bare.as_uri())
    jobs = JobStore(fakeredis.FakeAsyncRedis(), ttl_s=600)
    request = {"request": IngestRequest.for_site(settings).model_dump(mode="json")}
    running = await jobs.create(JobKind.INGEST, meta=request)
    pushed = await jobs.create(JobKind.INGEST, meta=request)
    store = EdgeStore(tmp_path / "edge")
    embedder = _GatedEmbedder()
    runtime = SimpleNamespace(
        settings=settings, jobs=jobs, redis=jobs.redis, store=store, embedder=embedder
    )
    try:
        first = asyncio.create_task(process_ingest_job(runtime, running.id))
        assert await asyncio.to_thread(embedder.entered.wait, 60)  # fetched, now embedding
        (work / "docs" / "b.md").write_text("# B\n\nPushed while indexing.\n")
        newest = commit_all(work, "second")
        await process_ingest_job(runtime, pushed.id)  # the push's webhook job
        embedder.go.set()
        await first
        skipped, done = await jobs.get(pushed.id), await jobs.get(running.id)
        assert skipped is not None
        assert done is not None
        assert skipped.result is not None
        assert skipped.result["skipped"] == "already_running"
        assert done.status is JobStatus.SUCCEEDED, done.error
        assert done.result is not None
        assert done.result["commit"] == newest
        assert done.result["pages_seen"] == 2
    finally:
        store.close()
