"""Running it like production: the ingestion lock, readiness, metrics, Flower."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis

from api.deps import AppState, get_state
from api.main import create_app
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobKind, JobStatus, JobStore
from shared.queues import make_sender
from shared.redis_client import make_redis
from shared.settings import EmbedderKind, Settings
from tests.conftest import ROOT, SAMPLE_SITE, _port_open
from tests.faults import PrivateRedis, TcpProxy
from tests.stack import Stack, _free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


# --- the per-site ingestion lock -------------------------------------------------------------


async def test_two_ingestions_of_one_site_never_overlap(redis_url: str, tmp_path: Path) -> None:
    from ingestion_jobs.embedding import get_embedder
    from shared.vectorstore import open_store
    from worker.ingest_job import SKIPPED_ALREADY_RUNNING, create_ingest_job, process_ingest_job
    from worker.locks import lock_key

    settings = Settings(
        data_dir=tmp_path, embedder=EmbedderKind.HASH, site_dir=SAMPLE_SITE,
        site_name=f"lock-test-{os.getpid()}", ingest_lock_timeout_s=5,
    )  # fmt: skip
    client = make_redis(redis_url)
    jobs = JobStore(client, ttl_s=600)
    store = open_store(settings)
    runtime = SimpleNamespace(
        settings=settings, jobs=jobs, redis=client, store=store, embedder=get_embedder(settings)
    )
    try:
        first = await create_ingest_job(client, jobs, settings, trigger="test")
        second = await create_ingest_job(client, jobs, settings, trigger="test")
        await asyncio.gather(
            process_ingest_job(runtime, first.id), process_ingest_job(runtime, second.id)
        )
        ended = [await jobs.get(first.id), await jobs.get(second.id)]
        assert all(job is not None and job.status is JobStatus.SUCCEEDED for job in ended)
        results = [job.result or {} for job in ended if job is not None]
        skipped = [r for r in results if r.get("skipped") == SKIPPED_ALREADY_RUNNING]
        indexed = [r for r in results if "pages_seen" in r]
        assert len(skipped) == 1, results
        assert len(indexed) == 1, results
        ran = first.id if "pages_seen" in results[0] else second.id
        assert skipped[0]["running_job_id"] == ran
        assert await client.exists(lock_key(settings.site_name)) == 0  # released

        # Once free, the site can be indexed again.
        third = await create_ingest_job(client, jobs, settings, trigger="test")
        await process_ingest_job(runtime, third.id)
        again = await jobs.get(third.id)
        assert again is not None
        assert "pages_seen" in (again.result or {})
    finally:
        store.close()
        await client.aclose()


async def test_lock_is_renewed_while_work_runs_and_heartbeats(redis_url: str) -> None:
    from worker.locks import SiteBusyError, lock_key, site_lock

    client = make_redis(redis_url)
    site = f"renew-{os.getpid()}"
    beats: list[float] = []

    async def beat() -> None:
        beats.append(time.monotonic())

    try:
        async with site_lock(client, site, holder="job-a", timeout_s=0.6, on_renew=beat):
            await asyncio.sleep(1.5)  # 2.5 TTLs: without renewal the lock would be gone
            assert await client.get(lock_key(site)) == b"job-a"
            with pytest.raises(SiteBusyError) as busy:
                async with site_lock(client, site, holder="job-b", timeout_s=0.6):
                    pass
            assert busy.value.holder == "job-a"
        assert len(beats) >= 3
        assert await client.exists(lock_key(site)) == 0
    finally:
        await client.aclose()


# --- stale jobs ------------------------------------------------------------------------------


async def test_cleanup_fails_running_jobs_without_heartbeat(redis_url: str, tmp_path: Path) -> None:
    from worker.cleanup import cleanup_jobs

    settings = Settings(data_dir=tmp_path, job_stale_after_s=30, chat_task_time_limit_s=10)
    client = make_redis(redis_url)
    jobs = JobStore(client, ttl_s=600)
    try:
        alive = await jobs.create(JobKind.CHAT)
        dead = await jobs.create(JobKind.INGEST)
        queued = await jobs.create(JobKind.CHAT)
        for job in (alive, dead):
            await jobs.mark_running(job.id)
        now = time.time()
        await client.hset(jobs.key(dead.id), "heartbeat_at", now - 3600)
        report = await cleanup_jobs(jobs, settings, redis=jobs.redis, now=now)
        assert dead.id in report.marked_lost
        assert alive.id not in report.marked_lost
        lost = await jobs.get(dead.id)
        assert lost is not None
        assert lost.status is JobStatus.FAILED
        assert (lost.error or {})["code"] == "worker_lost"
        for job_id, status in ((alive.id, JobStatus.RUNNING), (queued.id, JobStatus.QUEUED)):
            current = await jobs.get(job_id)
            assert current is not None
            assert current.status is status
    finally:
        await client.aclose()


# --- /readyz with Redis and the database going away and coming back -------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_proxy(postgres_url: str) -> Iterator[tuple[TcpProxy, str]]:
    proxy = TcpProxy(5432)
    proxy.start()
    host_part = postgres_url.rsplit("@", 1)
    url = f"{host_part[0]}@127.0.0.1:{proxy.port}/" + postgres_url.rsplit("/", 1)[1]
    yield proxy, url
    proxy.stop()


async def test_readyz_follows_redis_and_database_down_and_back(
    private_redis: PrivateRedis, db_proxy: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, database_url = db_proxy
    settings = Settings(
        data_dir=tmp_path, redis_url=private_redis.url, database_url=database_url,
        readyz_require_workers=False, readyz_worker_timeout_s=0.5, readyz_cache_s=0,
    )  # fmt: skip
    redis_client = make_redis(private_redis.url)
    engine = make_engine(database_url)
    state = AppState(
        settings=settings,
        redis=redis_client,
        jobs=JobStore(redis_client, ttl_s=600),
        sender=make_sender(private_redis.url),
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        secret=b"ops-test",
    )
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state

    async def ready() -> tuple[int, dict[str, str]]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=20
        ) as http:
            response = await http.get("/readyz")
        checks: dict[str, str] = response.json()["checks"]
        return response.status_code, checks

    async def until(status: int, limit_s: float = 15) -> dict[str, str]:
        deadline = time.monotonic() + limit_s
        while True:
            code, checks = await ready()
            if code == status or time.monotonic() > deadline:
                assert code == status, checks
                return checks
            await asyncio.sleep(0.3)

    try:
        checks = await until(200)
        assert checks == {
            "redis": "ok", "database": "ok", "qdrant": "embedded", "workers": "not required",
            "index": "ok", "llm": "ok",
        }  # fmt: skip

        private_redis.stop()
        checks = await until(503)
        assert checks["redis"].startswith("error")
        assert checks["database"] == "ok"
        private_redis.start()
        await until(200)

        proxy.stop()
        checks = await until(503)
        assert checks["database"].startswith("error")
        assert checks["redis"] == "ok"
        proxy.start()
        await until(200)

        # No worker consumes the queues of this Redis: not ready when workers are required.
        settings.readyz_require_workers = True
        checks = await until(503)
        assert checks["workers"] == "error: no worker on queue chat, ingest"
    finally:
        await redis_client.aclose()
        await engine.dispose()


# --- metrics after a real job through a real worker -------------------------------------------


def test_metrics_after_a_chat_job(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    accepted = stack.chat("How do I install Lumen?")
    job = stack.wait(accepted["status_url"], timeout=45)
    assert job["status"] == "succeeded", job

    deadline = time.monotonic() + 10
    while True:
        text = stack.http.get("/metrics").text
        if 'bookchat_jobs_finished_total{kind="chat",status="succeeded"} 1.0' in text:
            break
        assert time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)
    assert "bookchat_metrics_store_up 1.0" in text
    assert 'bookchat_job_latency_seconds_count{kind="chat",status="succeeded"} 1.0' in text
    assert 'bookchat_job_run_seconds_count{kind="chat"} 1.0' in text
    assert 'bookchat_queue_depth{queue="chat"}' in text
    assert 'bookchat_queue_depth{queue="ingest"}' in text
    # The time it waited for a worker, and the chat queue's oldest wait now (none waits).
    assert 'bookchat_job_queue_wait_seconds_count{kind="chat"} 1.0' in text
    assert 'bookchat_queue_oldest_wait_seconds{queue="chat"} 0.0' in text
    assert (
        'bookchat_http_request_duration_seconds_count{method="POST",route="/v1/chat",status="202"}'
        in text
    )
    assert "secret" not in text.lower()
    assert stack.env["BOOKCHAT_SECRET_KEY"] not in text

    ready = stack.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["workers"] == "ok"


# --- Flower answers its API with basic auth only ----------------------------------------------


def test_flower_api_requires_basic_auth(redis_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "FLOWER_"))}
    env["BOOKCHAT_REDIS_URL"] = redis_url
    log = tmp_path / "flower.log"
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "flower",
         f"--port={port}", "--address=127.0.0.1", "--basic-auth=ops:flower-pass"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _port_open("127.0.0.1", port):
            assert flower.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/api/workers"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
        response = httpx.get(url, auth=("ops", "flower-pass"), timeout=10)
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), dict)
    finally:
        flower.terminate()
        try:
            flower.wait(timeout=10)
        except subprocess.TimeoutExpired:
            flower.kill()
    assert redis.Redis.from_url(redis_url).ping()


async def test_cleanup_finds_a_lost_job_behind_ten_thousand_newer_ones(
    redis_url: str, tmp_path: Path
) -> None:
    """Issue 30: the cleanup read a recent-jobs index capped at 10,000: a job lost before
    10,000 newer ones was never found."""
    from worker.cleanup import cleanup_jobs

    settings = Settings(data_dir=tmp_path, job_stale_after_s=30, chat_task_time_limit_s=10)
    client = make_redis(redis_url)
    jobs = JobStore(client, ttl_s=600)
    await client.flushdb()  # no job of another test in the indexes
    try:
        dead = await jobs.create(JobKind.CHAT)
        await jobs.mark_running(dead.id)

        async def answered() -> None:
            newer = await jobs.create(JobKind.CHAT)
            await jobs.succeed(newer.id, {"answer": "ok"})

        for _ in range(41):  # 10,004 newer jobs, answered, 244 at a time
            await asyncio.gather(*(answered() for _ in range(244)))
        now = time.time()
        await client.hset(jobs.key(dead.id), "heartbeat_at", now - 3600)
        report = await cleanup_jobs(jobs, settings, redis=jobs.redis, now=now)
        assert report.marked_lost == [dead.id]
        assert await client.zcard("bookchat:jobs:unfinished") == 0
    finally:
        await client.aclose()
