"""The running stack for integration and e2e tests: real Redis, real Postgres, a real Celery
worker process, the API over real HTTP; the LLM is the fake server when a test asks for one.

Use the `make_stack` fixture (re-exported by the integration and e2e conftests)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from sqlmodel import col, select

from shared.db import make_engine, make_sessionmaker
from shared.models import Message
from shared.settings import EmbedderKind, Settings
from tests.conftest import ROOT, SAMPLE_SITE, _port_open


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    base_url: str
    http: httpx.Client
    worker: subprocess.Popen[bytes]
    worker_log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def chat(self, message: str, **body: Any) -> dict[str, Any]:
        response = self.http.post("/v1/chat", json={"message": message, **body})
        assert response.status_code == 202, response.text
        accepted: dict[str, Any] = response.json()
        return accepted

    def wait(self, status_url: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the job ends (long-polling, as the widget does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.http.get(f"{status_url}&wait=5")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in ("succeeded", "failed", "expired"):
                return job
        raise AssertionError(f"job did not finish in {timeout}s; worker log:\n{self.log()}")

    def log(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:]


def index_site_into(settings: Settings, site: Path) -> None:
    """Index `site` into the store these settings point at (the embedder they name), and its
    page catalog into their database, as an ingestion does."""
    from cli.progress import write_page_catalog
    from ingestion_jobs.embedding import get_embedder
    from ingestion_jobs.indexer import index_site
    from shared.vectorstore import open_store

    store = open_store(settings)
    try:
        index_site(
            site,
            store=store,
            embedder=get_embedder(settings),
            collection=settings.collection,
            site=settings.site_name,
            on_indexed=lambda read: write_page_catalog(settings, read),
        )
    finally:
        store.close()


def _serve_api(settings: Settings, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """The API of these settings, served by uvicorn on 127.0.0.1:`port` in a thread."""
    from api.main import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not _port_open("127.0.0.1", port):
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.05)
    return server, thread


@contextmanager
def api_only(settings: Settings) -> Iterator[httpx.Client]:
    """The API alone (no worker), over real HTTP: for what it answers without a job (the
    page catalog, the checks in front of the queue). Yields a client on its base URL."""
    server, thread = _serve_api(settings, _free_port())
    base_url = f"http://127.0.0.1:{server.config.port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def make_stack(tmp_path: Path, redis_url: str, postgres_url: str) -> Iterator[Callable[..., Stack]]:
    stacks: list[tuple[Stack, uvicorn.Server, threading.Thread]] = []

    def start(
        llm_base_url: str | None = None,
        site: Path = SAMPLE_SITE,
        *,
        api_port: int | None = None,
        cors_origins: list[str] | None = None,
        worker_command: list[str] | None = None,
        embedded_database: bool = False,
        api_settings: dict[str, Any] | None = None,
        **env_extra: str,
    ) -> Stack:
        """`api_port`: serve the API there (a test that must know it beforehand, e.g. to build
        a site pointing at it); `cors_origins`: the API's CORS allow-list, exactly;
        `worker_command`: the worker's command line instead of the tests' small threads pool
        (e.g. the Procfile's own `bookchat worker --queues chat`); `embedded_database`: the
        embedded default's SQLite in the data dir instead of Postgres; `api_settings`: more
        settings of the API's (not the worker's)."""
        redis.Redis.from_url(redis_url).flushdb()
        database_url = postgres_url
        if embedded_database:
            from shared.migrate import upgrade_database

            database_url = Settings(data_dir=tmp_path / "data").effective_database_url
            upgrade_database(database_url)
        env = {
            "BOOKCHAT_DATA_DIR": str(tmp_path / "data"),
            "BOOKCHAT_REDIS_URL": redis_url,
            "BOOKCHAT_DATABASE_URL": database_url,
            "BOOKCHAT_EMBEDDER": "hash",
            "BOOKCHAT_SECRET_KEY": "integration-secret-0123456789",
            "BOOKCHAT_SITE_DIR": str(site),
            "BOOKCHAT_LOG_LEVEL": "INFO",
            **env_extra,
        }
        if llm_base_url:
            env["BOOKCHAT_LLM_BASE_URL"] = llm_base_url
            env["BOOKCHAT_LLM_API_KEY"] = "test-key"
        settings = Settings(
            data_dir=tmp_path / "data",
            redis_url=redis_url,
            database_url=database_url,
            embedder=EmbedderKind.HASH,
            secret_key=env["BOOKCHAT_SECRET_KEY"],  # type: ignore[arg-type]
            site_dir=site,
            cors_origins=cors_origins or [],
            # A given allow-list is the whole list: development's localhost origins (the test
            # sites are served on 127.0.0.1) are not added to it.
            cors_allow_localhost=False if cors_origins is not None else None,
            **(api_settings or {}),
        )
        index_site_into(settings, site)
        log_path = tmp_path / f"worker-{len(stacks)}.log"
        worker_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))
        }
        worker_env.update(env)
        worker = subprocess.Popen(
            worker_command
            or [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app",
                "worker",
                "-P",
                "threads",
                "-c",
                "2",
                "-Q",
                "chat,ingest",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"test-{os.getpid()}-{len(stacks)}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        port = api_port or _free_port()
        server, thread = _serve_api(settings, port)
        # A question sent before the worker consumes its queues waits in Redis, but the API's own
        # deadlines (15 s for /v1/retrieve) start at once, and a worker importing its stack on a
        # loaded machine can take longer than that: hand out the stack once Celery says "ready".
        deadline = time.monotonic() + 120
        while b" ready." not in log_path.read_bytes():
            assert worker.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "the Celery worker did not become ready"
            time.sleep(0.1)
        base_url = f"http://127.0.0.1:{port}"
        stack = Stack(
            settings=settings,
            env=env,
            base_url=base_url,
            http=httpx.Client(base_url=base_url, timeout=30),
            worker=worker,
            worker_log=log_path,
        )
        stacks.append((stack, server, thread))
        return stack

    yield start
    for stack, server, thread in stacks:
        stack.http.close()
        server.should_exit = True
        thread.join(timeout=10)
        if stack.worker.poll() is None:
            stack.worker.send_signal(signal.SIGTERM)
            try:
                stack.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stack.worker.kill()


def stored_messages(stack: Stack, session_id: str) -> list[Message]:
    """The history rows of a session, oldest first, read straight from the database."""

    async def read() -> list[Message]:
        engine = make_engine(stack.settings.effective_database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                rows = await db.exec(
                    select(Message)
                    .where(Message.session_id == uuid.UUID(session_id))
                    .order_by(col(Message.created_at))
                )
                return list(rows.all())
        finally:
            await engine.dispose()

    return asyncio.run(read())
