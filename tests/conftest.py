"""Shared fixtures: settings for a temporary data dir, real services for the integration tier."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared.settings import EmbedderKind, Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SITE = ROOT / "examples" / "sample-site"
SHARED = ROOT.parent / "shared"

# A database number of its own per test run, so two runs on one machine (or one Redis) do not
# consume each other's Celery tasks.
REDIS_URL = os.environ.get(
    "BOOKCHAT_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{1 + os.getpid() % 15}"
)
POSTGRES_ADMIN_URL = os.environ.get(
    "BOOKCHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings in a temporary data dir, with the fast fake embedder."""
    return Settings(
        data_dir=tmp_path / "data",
        embedder=EmbedderKind.HASH,
        site_dir=SAMPLE_SITE,
        redis_url=REDIS_URL,
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _port_open("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (run .ci/services)")
    return REDIS_URL


@contextmanager
def throwaway_postgres(prefix: str = "bookchat_test") -> Iterator[str]:
    """A fresh, migrated database on the machine's PostgreSQL, dropped afterwards (tests and
    benchmarks)."""
    import asyncio

    import asyncpg

    from shared.migrate import upgrade_database

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade_database(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not _port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (run .ci/services)")
    with throwaway_postgres() as url:
        yield url
