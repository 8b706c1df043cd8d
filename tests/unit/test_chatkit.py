"""POST /v1/chatkit with no services: fakeredis, SQLite history, the in-memory broker, and the
real chat pipeline (offline model, in-memory Qdrant) playing the worker in the same process.
Requests and replies go through the ChatKit SDK's own types (tests/chatkit_client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from chatkit.types import (
    AssistantMessageItem,
    ErrorEvent,
    ProgressUpdateEvent,
    ThreadCreatedEvent,
    ThreadItemAddedEvent,
    UserMessageItem,
)
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.chatkit_store import citation_annotations
from api.deps import AppState
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import index_site
from shared.jobs import JobKind, JobStatus, JobStore
from shared.settings import Settings
from shared.vectorstore.edge import EdgeStore
from tests import chatkit_client as ck
from tests.conftest import SAMPLE_SITE
from tests.unit.conftest import SECRET
from worker.chat_job import process_chat_job
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

QUESTION = "How do I send the arm to its home pose?"


@dataclass
class Runtime:
    """What `process_chat_job` needs of a worker runtime (`worker.runtime.ChatRuntime`)."""

    settings: Settings
    jobs: JobStore
    redis: Redis
    sessionmaker: async_sessionmaker[AsyncSession]
    retriever: Retriever


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    store = EdgeStore(tmp_path_factory.mktemp("edge"))
    embedder = HashEmbedder()
    index_site(SAMPLE_SITE, store=store, embedder=embedder, collection="bookchat")
    yield Retriever(store, embedder, "bookchat")
    store.close()


@pytest.fixture
async def worker(state: AppState, retriever: Retriever) -> AsyncIterator[list[str]]:
    """Runs queued chat jobs through the real pipeline, as the Celery task would."""
    runtime = Runtime(state.settings, state.jobs, state.redis, state.sessionmaker, retriever)
    ran: list[str] = []

    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            async for key in state.jobs.redis.scan_iter("bookchat:job:*"):
                name = key.decode()
                if name.endswith(":events"):
                    continue
                job = await state.jobs.get(name.rsplit(":", 1)[1])
                if job and job.kind is JobKind.CHAT and job.status is JobStatus.QUEUED:
                    await process_chat_job(runtime, job.id)
                    ran.append(job.id)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    yield ran
    # Let a job in flight finish: cancelling it mid-write leaves an aiosqlite connection
    # checked out, and the engine's dispose at teardown would wait for it forever.
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def post(http: httpx.AsyncClient, payload: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Session-Token"] = token
    return await http.post("/v1/chatkit", content=payload, headers=headers)


async def test_new_thread_streams_an_answer_with_sources_and_reads_back_from_history(
    client: httpx.AsyncClient, worker: list[str]
) -> None:
    response = await post(client, ck.create_thread(QUESTION))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = ck.parse_stream(response.text)

    created = next(e for e in events if isinstance(e, ThreadCreatedEvent))
    thread_id, token = ck.session_of(events)
    assert created.thread.id == thread_id == response.headers["x-session-id"]
    assert token == response.headers["x-session-token"]
    assert any(isinstance(e, ProgressUpdateEvent) for e in events)
    assert any(
        isinstance(e, ThreadItemAddedEvent) and isinstance(e.item, AssistantMessageItem)
        for e in events
    )
    assert ck.streamed_text(events)
    done = ck.done_items(events)
    assert isinstance(done[0], UserMessageItem)
    answer = done[-1]
    assert isinstance(answer, AssistantMessageItem)
    sources = answer.content[0].annotations
    assert sources
    assert any("first-move" in (s.source.description or "") for s in sources)
    assert all(getattr(s.source, "url", "").startswith("http") for s in sources)

    listed = await post(client, ck.list_items(thread_id), token)
    assert listed.status_code == 200, listed.text
    items = ck.ITEMS.validate_json(listed.content).data
    assert [type(i) for i in items] == [UserMessageItem, AssistantMessageItem]
    # The ids streamed are the ids read back: the history rows are the thread items.
    assert [i.id for i in items] == [done[0].id, answer.id]
    assert isinstance(items[1], AssistantMessageItem)
    assert items[1].content[0].text == answer.content[0].text

    # The same conversation through the plain history API: a thread is a session.
    history = await client.get(
        f"/v1/sessions/{thread_id}/messages", headers={"X-Session-Token": token}
    )
    assert [m["role"] for m in history.json()] == ["user", "assistant"]


async def test_second_turn_continues_the_thread(
    client: httpx.AsyncClient, worker: list[str]
) -> None:
    first = ck.parse_stream((await post(client, ck.create_thread(QUESTION))).text)
    thread_id, token = ck.session_of(first)
    second = await post(client, ck.add_message(thread_id, "How often should I do that?"), token)
    assert second.status_code == 200
    events = ck.parse_stream(second.text)
    assert not any(isinstance(e, ThreadCreatedEvent) for e in events)
    assert isinstance(ck.done_items(events)[-1], AssistantMessageItem)
    thread = ck.parse_thread((await post(client, ck.get_thread(thread_id), token)).content)
    assert thread.title == QUESTION
    assert len(thread.items.data) == 4


async def test_existing_threads_need_their_token(client: httpx.AsyncClient) -> None:
    thread_id = "6b0d3c8e-5f55-4a47-9d59-3f1e4b1f7a10"
    for payload in (ck.list_items(thread_id), ck.add_message(thread_id, "hello?")):
        assert (await post(client, payload)).status_code == 403
        denied = await post(client, payload, "not-the-token")
        assert denied.status_code == 403
        assert denied.json()["code"] == "forbidden"


async def test_unsupported_and_bad_requests_are_4xx_with_codes(
    client: httpx.AsyncClient,
) -> None:
    bad = await post(client, b'{"type": "threads.nope", "params": {}}')
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"
    upload = await post(
        client,
        b'{"type": "attachments.create", "params": {"name": "a.png", "size": 1,'
        b' "mime_type": "image/png"}}',
    )
    assert upload.status_code == 400
    assert upload.json()["code"] == "unsupported_operation"
    blank = await post(client, ck.create_thread("   "))
    assert blank.status_code == 422


async def test_a_failed_job_becomes_a_chatkit_error_event(
    client: httpx.AsyncClient,
    state: AppState,
) -> None:
    async def fail_jobs() -> None:
        while True:
            async for key in state.jobs.redis.scan_iter("bookchat:job:*"):
                name = key.decode()
                job = None if name.endswith(":events") else await state.jobs.get(name[-36:])
                if job and job.status is JobStatus.QUEUED:
                    await state.jobs.fail(job.id, "llm_unavailable", "No model answered.")
            await asyncio.sleep(0.01)

    task = asyncio.create_task(fail_jobs())
    try:
        events = ck.parse_stream((await post(client, ck.create_thread(QUESTION))).text)
    finally:
        task.cancel()
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.message == "No model answered."
    assert error.allow_retry


def test_citations_become_url_sources_titled_page_and_heading() -> None:
    citations: list[dict[str, Any]] = [
        {"path": "docs/a.md", "url": "https://x.org/a#b", "heading": "B", "title": "A"},
        {"path": "docs/c.md", "url": "https://x.org/c", "heading": "C", "title": "C"},
    ]
    first, second = citation_annotations(citations)
    assert first.source.title == "A › B"
    assert getattr(first.source, "url", None) == "https://x.org/a#b"
    assert second.source.title == "C"
    assert SECRET  # the AppState fixture's secret signs the tokens above
