"""The ingestion job around the indexer: an unreachable vector store is retried, not failed."""

from __future__ import annotations

from types import SimpleNamespace

import fakeredis
import pytest
from qdrant_client import QdrantClient

from ingestion_jobs.embedding import HashEmbedder
from shared.job_models import IngestRequest
from shared.jobs import JobKind, JobStatus, JobStore
from shared.settings import Settings
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
