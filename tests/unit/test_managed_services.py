"""Managed services by configuration alone: Neon connection strings, Qdrant Cloud client
options and payload indexes, OpenRouter attribution headers."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from shared.db import make_engine, normalise_database_url, parse_database_url
from shared.settings import Settings
from shared.vectorstore import INDEXED_FIELDS, open_store
from shared.vectorstore.server import QdrantServerStore
from worker.retrieval import SearchFilters

pytestmark = pytest.mark.unit

NEON_DIRECT = (
    "postgresql://alex:AbC123dEf@ep-cool-darkness-123456.us-east-2.aws.neon.tech/dbname"
    "?sslmode=require&channel_binding=require"
)
NEON_POOLED = (
    "postgresql://alex:AbC123dEf@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/dbname"
    "?sslmode=require&channel_binding=require"
)


def test_neon_direct_string_is_translated_for_asyncpg() -> None:
    target = parse_database_url(NEON_DIRECT)
    assert target.url == (
        "postgresql+asyncpg://alex:AbC123dEf@ep-cool-darkness-123456.us-east-2.aws.neon.tech"
        "/dbname?ssl=require"
    )
    assert not target.pooled
    assert target.connect_args == {}


def test_neon_pooled_string_turns_statement_caches_off() -> None:
    target = parse_database_url(NEON_POOLED)
    assert target.pooled
    assert target.url.endswith("-pooler.us-east-2.aws.neon.tech/dbname?ssl=require")
    assert target.connect_args["statement_cache_size"] == 0
    assert target.connect_args["prepared_statement_cache_size"] == 0
    name_func = target.connect_args["prepared_statement_name_func"]
    assert name_func() != name_func()  # unique names: no clash across PgBouncer backends


def test_pooling_can_be_forced_either_way() -> None:
    assert parse_database_url(NEON_DIRECT, pooled=True).pooled
    assert not parse_database_url(NEON_POOLED, pooled=False).pooled
    assert "statement_cache_size" not in parse_database_url(NEON_POOLED, pooled=False).connect_args


def test_libpq_options_timeout_and_app_name_become_asyncpg_arguments() -> None:
    target = parse_database_url(
        "postgres://u:p@host:5433/db?sslmode=verify-full&connect_timeout=10"
        "&application_name=bookchat&options=endpoint%3Dep-abc%20-c%20search_path%3Dbook"
    )
    assert target.url == "postgresql+asyncpg://u:p@host:5433/db?ssl=verify-full"
    assert target.connect_args == {
        "timeout": 10.0,
        "server_settings": {"application_name": "bookchat", "search_path": "book"},
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db?ssl=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("sqlite:///x/y.db", "sqlite+aiosqlite:///x/y.db"),
        ("sqlite+aiosqlite:///x/y.db", "sqlite+aiosqlite:///x/y.db"),
    ],
)
def test_plain_urls_are_unchanged_but_for_the_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


async def test_engine_pool_sizes_and_pooler_options_reach_sqlalchemy() -> None:
    engine = make_engine(NEON_POOLED, pool_size=3, max_overflow=2)
    try:
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 2  # type: ignore[attr-defined]
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        assert kwargs["ssl"] == "require"
        assert kwargs["host"].endswith("-pooler.us-east-2.aws.neon.tech")
    finally:
        await engine.dispose()


def test_pool_sizes_default_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKCHAT_DB_POOL_SIZE", "7")
    monkeypatch.setenv("BOOKCHAT_DB_MAX_OVERFLOW", "1")
    engine = make_engine(NEON_DIRECT, Settings())  # the caller's settings, read from the env
    assert engine.pool.size() == 7  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 1  # type: ignore[attr-defined]


# --- Qdrant Cloud ---------------------------------------------------------------------------


def test_qdrant_cloud_url_and_key_reach_the_client() -> None:
    settings = Settings(
        qdrant_url="https://abc-123.eu-central-1-0.aws.cloud.qdrant.io:6333",
        qdrant_api_key="qd-secret",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns when it cannot check the version
        store = open_store(settings)
    assert isinstance(store, QdrantServerStore)
    try:
        remote: Any = store.client._client
        assert remote.rest_uri == "https://abc-123.eu-central-1-0.aws.cloud.qdrant.io:6333"
        assert remote._https is True
        assert remote._api_key == "qd-secret"
        assert remote._timeout == 30
    finally:
        store.close()


class RecordingClient(QdrantClient):
    """Qdrant's local mode ignores payload indexes; record the calls a server would get."""

    def __init__(self) -> None:
        super().__init__(location=":memory:")
        self.indexes: dict[str, Any] = {}

    def create_payload_index(  # type: ignore[override]
        self, collection_name: str, field_name: str, **kw: Any
    ) -> Any:
        self.indexes[field_name] = kw.get("field_schema")
        return super().create_payload_index(collection_name, field_name, **kw)


def test_payload_indexes_cover_every_filtered_field() -> None:
    client = RecordingClient()
    QdrantServerStore(client).create("book", dim=8, embedder="hash")
    assert set(client.indexes) == set(INDEXED_FIELDS)
    assert {"site", "path", "version", "locale", "path_prefixes"} <= set(client.indexes)
    query_filter = SearchFilters(site="s", path_prefix="docs", version="1", locale="en").to_filter(
        path="docs/a.md"
    )
    assert query_filter is not None
    filtered = {key for key, _ in query_filter.equal}
    assert filtered <= set(client.indexes)


# --- OpenRouter -----------------------------------------------------------------------------


def test_openrouter_gets_attribution_headers_by_default() -> None:
    from worker.llm import attribution_headers

    settings = Settings(llm_api_key="sk-or-test", public_base_url="https://docs.example.com")
    assert settings.llm_base_url == "https://openrouter.ai/api/v1"
    assert settings.llm_model.endswith(":free")  # the documented default: a free model
    assert attribution_headers(settings) == {
        "HTTP-Referer": "https://docs.example.com",
        "X-Title": "bookchat",
    }
    other = Settings(llm_base_url="https://api.openai.com/v1")
    assert attribution_headers(other) == {}
    off = Settings(llm_attribution_headers=False)
    assert attribution_headers(off) == {}


async def test_forced_attribution_headers_arrive_at_the_endpoint() -> None:
    from tests.fake_llm import FakeLLM
    from worker.llm import openai_client

    with FakeLLM() as fake:
        settings = Settings(
            llm_base_url=fake.base_url,
            llm_api_key="sk-or-test",
            llm_attribution_headers=True,
            llm_app_url="https://robots.example.org/docs",
            llm_app_title="Lumen manual",
        )
        client = openai_client(settings)
        await client.chat.completions.create(
            model="openai/gpt-oss-20b:free", messages=[{"role": "user", "content": "hi"}]
        )
        headers = fake.records[-1].headers
    assert headers["http-referer"] == "https://robots.example.org/docs"
    assert headers["x-title"] == "Lumen manual"


def test_fallback_models_are_tried_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.agent import ChatContext
    from worker.llm import make_models

    monkeypatch.setenv(
        "BOOKCHAT_LLM_FALLBACK_MODELS",
        '["meta-llama/llama-3.3-70b-instruct:free", "qwen/qwen3-32b:free"]',
    )
    settings = Settings(llm_api_key="sk-or-test")
    context: Any = ChatContext(retriever=None, question="q")  # type: ignore[arg-type]
    names = [name for name, _ in make_models(settings, context)]
    assert names == [
        "openai/gpt-oss-20b:free",
        "meta-llama/llama-3.3-70b-instruct:free",
        "qwen/qwen3-32b:free",
    ]


async def test_the_embedded_sqlite_database_is_one_queued_connection_per_process(
    tmp_path: Path,
) -> None:
    # 200 answers in flight end together: on one connection their history writes queue in
    # order, instead of several connections of one process busy-waiting on SQLite's lock.
    from sqlalchemy import text

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    try:
        assert engine.pool.size() == 1  # type: ignore[attr-defined]

        async def pragma(name: str) -> Any:
            async with engine.connect() as connection:
                return (await connection.execute(text(f"PRAGMA {name}"))).scalar()

        assert await pragma("journal_mode") == "wal"
        assert await pragma("synchronous") == 1  # NORMAL: a commit waits for no fsync in WAL
        assert await pragma("foreign_keys") == 1
        values = await asyncio.gather(*(pragma("user_version") for _ in range(200)))
        assert values == [0] * 200  # all served, one after the other
    finally:
        await engine.dispose()
