"""A database that is not up yet (a Neon compute waking from suspend) is retried, bounded."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from shared.db import make_engine

pytestmark = pytest.mark.integration


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def flaky_proxy(target_port: int, drop_first: int) -> tuple[asyncio.Server, list[int]]:
    """Drops the first `drop_first` connections, then forwards to Postgres."""
    seen = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        if seen[0] <= drop_first:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


async def test_connect_is_retried_while_the_database_wakes(postgres_url: str) -> None:
    server, seen = await flaky_proxy(urlsplit(postgres_url).port or 5432, drop_first=2)
    port = server.sockets[0].getsockname()[1]
    engine = make_engine(_via(postgres_url, port), connect_retries=3, retry_delay_s=0.05)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1
        assert seen[0] == 3
    finally:
        await engine.dispose()
        server.close()


async def test_retries_are_bounded(postgres_url: str) -> None:
    server, seen = await flaky_proxy(urlsplit(postgres_url).port or 5432, drop_first=100)
    port = server.sockets[0].getsockname()[1]
    engine = make_engine(_via(postgres_url, port), connect_retries=2, retry_delay_s=0.01)
    try:
        with pytest.raises(Exception):  # noqa: B017,PT011 - the driver's own connection error
            async with engine.connect():
                pass
        assert seen[0] == 3
    finally:
        await engine.dispose()
        server.close()
