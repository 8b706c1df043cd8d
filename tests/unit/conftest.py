"""Fixtures of the unit tier: the API's state over fakeredis, SQLite and an in-memory broker,
and an HTTP client to the app built with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest

from api.deps import AppState, get_state
from api.main import create_app
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.migrate import upgrade_database
from shared.queues import make_sender
from shared.settings import Settings

SECRET = b"unit-secret"


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
