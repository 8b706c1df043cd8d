"""Fixtures of the unit tier: the API's state over fakeredis, SQLite and an in-memory broker,
an HTTP client to the app built with it, and the sample site indexed in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import fakeredis
import httpx
import pytest
from qdrant_client import QdrantClient

from api.deps import AppState, get_state
from api.main import create_app
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import index_site
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.migrate import upgrade_database
from shared.queues import make_sender
from shared.settings import EmbedderKind, Settings
from tests.conftest import SAMPLE_SITE
from tests.fake_llm import FakeLLM
from worker.retrieval import Retriever

SECRET = b"unit-secret"


@pytest.fixture(scope="module")
def retriever() -> Iterator[Retriever]:
    """The sample site indexed in memory with the hash embedder."""
    client = QdrantClient(":memory:")
    embedder = HashEmbedder()
    index_site(SAMPLE_SITE, client=client, embedder=embedder, collection="bookchat")
    yield Retriever(client, embedder, "bookchat")
    client.close()


def llm_settings(fake: FakeLLM, **overrides: object) -> Settings:
    """Settings that send the pipeline to `fake` (model "primary", a 10 s deadline)."""
    values: dict[str, object] = {
        "embedder": EmbedderKind.HASH,
        "llm_base_url": fake.base_url,
        "llm_api_key": "test",
        "llm_model": "primary",
        "llm_timeout_s": 10,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    settings.data_dir.mkdir(parents=True)
    await asyncio.to_thread(upgrade_database, settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    redis = fakeredis.FakeAsyncRedis()
    yield AppState(
        settings=settings,
        redis=redis,
        jobs=JobStore(redis, ttl_s=600),
        sender=make_sender("memory://"),
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        secret=SECRET,
    )
    await engine.dispose()


@pytest.fixture
async def client(settings: Settings, state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
