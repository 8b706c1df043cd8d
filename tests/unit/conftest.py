"""Fixtures of the unit tier: the API's state over fakeredis, SQLite and an in-memory broker,
an HTTP client to the app built with it, vector stores and the sample site indexed in one."""

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
from shared.vectorstore import VectorStore
from shared.vectorstore.edge import EdgeStore
from shared.vectorstore.server import QdrantServerStore
from tests.conftest import SAMPLE_SITE
from tests.fake_llm import FakeLLM
from worker.retrieval import Retriever

SECRET = b"unit-secret"


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    """The sample site indexed in an Edge store with the hash embedder."""
    store = EdgeStore(tmp_path_factory.mktemp("edge"))
    embedder = HashEmbedder()
    index_site(SAMPLE_SITE, store=store, embedder=embedder, collection="bookchat")
    yield Retriever(store, embedder, "bookchat")
    store.close()


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


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorStore]:
    """The embedded store (Qdrant Edge) in a fresh folder, as the embedded default opens it."""
    edge = EdgeStore(tmp_path_factory.mktemp("edge"))
    yield edge
    edge.close()


@pytest.fixture(params=["edge", "qdrant-client"])
def any_store(request: pytest.FixtureRequest, store: VectorStore) -> VectorStore:
    """Each engine behind the one interface: Qdrant Edge, and qdrant-client (in memory here,
    as the stand-in for a Qdrant server: the same client code talks to both)."""
    if request.param == "edge":
        return store
    return QdrantServerStore(QdrantClient(location=":memory:"))


@pytest.fixture
def one_rate_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limiter's clock stopped at the test's start: the limits count per clock minute,
    and a slow run crossing a minute boundary would start a fresh count midway."""
    import time
    from types import SimpleNamespace

    from api import limits

    started = time.time()
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: started))
