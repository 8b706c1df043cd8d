"""The docs MCP server at /mcp, driven by the official SDK's own client against the real stack
(Redis, Postgres, a Celery worker, the API over HTTP; the offline model answers)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from cli.progress import write_page_catalog
from ingestion_jobs.docusaurus import read_site
from shared.settings import EmbedderKind, Settings
from tests.conftest import ROOT, SAMPLE_SITE
from tests.stack import Stack, api_only, stored_messages

pytestmark = pytest.mark.integration


def _client(url: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return Client(streamable_http_client(url, http_client=http))


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


def _error_text(result: Any) -> str:
    """A tool error's text without the SDK's `Error executing tool <name>: ` prefix."""
    assert result.is_error, result
    text = str(result.content[0].text)
    return text.split(": ", 1)[1] if text.startswith("Error executing tool ") else text


def _check_stdio(stack: Stack) -> None:
    """`bookchat mcp` (stdio), launched by the SDK's client as an assistant launches it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp", "--url", stack.base_url],
        cwd=str(ROOT),
        env={**os.environ, "BOOKCHAT_DATA_DIR": str(stack.settings.data_dir)},
    )
    over_http = stack.http.post("/v1/retrieve", json={"query": "soft limits", "limit": 2})

    async def scenario() -> dict[str, Any]:
        async with Client(params) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            found = _structured(
                await client.call_tool("search_docs", {"query": "soft limits", "limit": 2})
            )
            page = _structured(
                await client.call_tool("get_page", {"url_or_path": found["passages"][0]["url"]})
            )
            answer = _structured(
                await client.call_tool("ask_docs", {"question": "How do I set soft limits?"})
            )
            missing = _error_text(await client.call_tool("get_page", {"url_or_path": "nosuch"}))
            return {"names": names, "found": found, "page": page, "answer": answer,
                    "missing": missing}  # fmt: skip

    got = asyncio.run(scenario())
    assert got["names"] == {"search_docs", "ask_docs", "get_page"}
    assert got["found"]["passages"] == over_http.json()
    assert got["page"]["markdown"].startswith("# ")
    assert not got["answer"]["declined"], got["answer"]
    assert [row.role for row in stored_messages(stack, got["answer"]["session_id"])] == [
        "user",
        "assistant",
    ]
    assert got["missing"].startswith("page_not_found: ")


def test_every_tool_over_http_and_stdio(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    url = f"{stack.base_url}/mcp"
    expected = stack.http.post("/v1/retrieve", json={"query": "home pose", "limit": 3})
    assert expected.status_code == 200, expected.text

    async def scenario() -> dict[str, Any]:
        async with _client(url) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            found = _structured(
                await client.call_tool("search_docs", {"query": "home pose", "limit": 3})
            )
            progress_seen: list[float] = []

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                progress_seen.append(progress)

            answer = _structured(
                await client.call_tool(
                    "ask_docs",
                    {"question": "How do I send the arm to its home pose?"},
                    progress_callback=on_progress,
                )
            )
            first = found["passages"][0]
            by_url = _structured(await client.call_tool("get_page", {"url_or_path": first["url"]}))
            by_path = _structured(
                await client.call_tool("get_page", {"url_or_path": first["path"]})
            )
            errors = {
                "blank": _error_text(await client.call_tool("search_docs", {"query": ""})),
                "limit": _error_text(
                    await client.call_tool("search_docs", {"query": "x", "limit": 500})
                ),
                "page": _error_text(
                    await client.call_tool("get_page", {"url_or_path": "/docs/no-such-page"})
                ),
            }
            return {
                "tools": tools,
                "found": found,
                "answer": answer,
                "progress": progress_seen,
                "by_url": by_url,
                "by_path": by_path,
                "errors": errors,
            }

    got = asyncio.run(scenario())
    assert set(got["tools"]) == {"search_docs", "ask_docs", "get_page"}
    search_schema = got["tools"]["search_docs"].input_schema
    assert search_schema["required"] == ["query"]
    assert {"query", "limit", "version", "path_prefix"} <= set(search_schema["properties"])
    assert "anchor" in (got["tools"]["search_docs"].description or "")

    # search_docs ranks as POST /v1/retrieve does.
    assert [(p["url"], p["heading"]) for p in got["found"]["passages"]] == [
        (p["url"], p["heading"]) for p in expected.json()
    ]

    # ask_docs ran as a chat job: a cited answer, recorded in the history like any question.
    answer = got["answer"]
    assert not answer["declined"], answer
    assert answer["citations"], answer
    assert "[1]" in answer["answer"], answer
    rows = stored_messages(stack, answer["session_id"])
    assert [row.role for row in rows] == ["user", "assistant"]
    assert rows[0].content == "How do I send the arm to its home pose?"
    assert got["progress"], "no progress was reported while the answer was written"

    # get_page finds the page by its URL (with #anchor) and by its source path.
    first = got["found"]["passages"][0]
    assert got["by_url"] == got["by_path"]
    assert got["by_url"]["url"] == first["url"].split("#")[0]
    assert got["by_url"]["markdown"].startswith(f"# {first['title']}\n")
    assert f" {first['heading']}\n" in got["by_url"]["markdown"]

    assert got["errors"]["blank"].startswith("validation_error: ")
    assert got["errors"]["limit"].startswith("validation_error: ")
    assert got["errors"]["page"].startswith("page_not_found: ")

    _check_stdio(stack)


@pytest.fixture
def catalog_settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings of an API whose site (the sample site) has been ingested into the embedded
    database's page catalog; no worker runs."""
    redis.Redis.from_url(redis_url).flushdb()  # no rate-limit count left by an earlier test
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        embedder=EmbedderKind.HASH,
        secret_key="mcp-test-secret-0123456789",
        site_dir=SAMPLE_SITE,
        mcp_token="mcp-secret-1",
        rate_limit_ip_per_minute=2,
        cors_origins=["https://docs.example.org"],
    )
    write_page_catalog(settings, read_site(SAMPLE_SITE))
    return settings


def test_token_origin_and_rate_limit(catalog_settings: Settings) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    token = {"Authorization": "Bearer mcp-secret-1"}
    with api_only(catalog_settings) as http:
        no_token = http.post("/mcp", json=initialize, headers=headers)
        wrong = http.post("/mcp", json=initialize, headers={**headers, "Authorization": "Bearer x"})
        foreign = http.post(
            "/mcp", json=initialize, headers={**headers, **token, "Origin": "http://evil.example"}
        )
        allowed = http.post(
            "/mcp",
            json=initialize,
            headers={**headers, **token, "Origin": "https://docs.example.org"},
        )
        url = str(http.base_url.join("/mcp"))

        async def scenario() -> list[Any]:
            async with _client(url, token="mcp-secret-1") as client:
                return [
                    await client.call_tool("get_page", {"url_or_path": "docs/index.md"})
                    for _ in range(3)
                ]

        results = asyncio.run(scenario())
        # The limit is the HTTP API's own: the same address is limited there too.
        limited = http.get("/llms-full.txt")

    assert no_token.status_code == 401
    assert no_token.json()["code"] == "unauthorized"
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "forbidden"
    assert allowed.status_code == 200, allowed.text
    assert [r.is_error for r in results] == [False, False, True]
    assert _error_text(results[2]).startswith("rate_limited: ")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
