"""POST /v1/chatkit with no services: fakeredis, SQLite history, the in-memory broker, and the
real chat pipeline (offline model, in-memory Qdrant) playing the worker in the same process.
Requests and replies go through the ChatKit SDK's own types (tests/chatkit_client.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
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
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.chatkit_store import citation_annotations
from api.deps import AppState, get_state
from api.main import create_app
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import index_site
from shared.jobs import EventType, JobKind, JobStatus, JobStore
from shared.models import Feedback, FeedbackRating
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


# --- a question survives the reader leaving (issue 26 item 5) and a failed retry (issue 30.8)


@dataclass
class Left:
    """What a client that read one event of the stream and then left had seen by then."""

    thread_id: str
    token: str
    status: int
    first_event: bytes
    stored_then: list[str]  # history rows (role) at the moment of the first event
    jobs_then: list[str]  # ids of the chat jobs queued by then


async def _chat_jobs(state: AppState) -> list[str]:
    ids = []
    async for key in state.jobs.redis.scan_iter("bookchat:job:*"):
        name = key.decode()
        if name.endswith(":events"):
            continue
        job = await state.jobs.get(name.rsplit(":", 1)[1])
        if job and job.kind is JobKind.CHAT:
            ids.append(job.id)
    return ids


async def ask_and_leave(
    state: AppState,
    payload: bytes,
    *,
    thread_id: str | None = None,
    token: str | None = None,
) -> Left:
    """POST /v1/chatkit as a raw ASGI call whose client disconnects right after the first
    event: a reader who reloads the page (or follows a link) just after sending."""
    app = create_app(state.settings)
    app.dependency_overrides[get_state] = lambda: state
    headers = [(b"content-type", b"application/json"), (b"host", b"test")]
    if token:
        headers.append((b"x-session-token", token.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chatkit",
        "raw_path": b"/v1/chatkit",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    incoming: list[dict[str, Any]] = [{"type": "http.request", "body": payload}]
    gone = asyncio.Event()
    seen: dict[str, Any] = {"headers": {}}

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            seen["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body" and "first" not in seen:
            seen["first"] = message.get("body", b"")
            session = seen["headers"].get("x-session-id") or thread_id
            rows = await state.history.messages(uuid.UUID(session)) if session else []
            seen["stored"] = [row.role for row in rows]
            seen["jobs"] = await _chat_jobs(state)
            gone.set()  # the reader leaves
            if not message.get("more_body"):
                return
            raise OSError("client gone")

    with contextlib.suppress(OSError):
        await app(scope, receive, send)
    return Left(
        thread_id=seen["headers"].get("x-session-id") or thread_id or "",
        token=seen["headers"].get("x-session-token") or token or "",
        status=seen.get("status", 0),
        first_event=seen.get("first", b""),
        stored_then=seen.get("stored", []),
        jobs_then=seen.get("jobs", []),
    )


async def _feedback_on(state: AppState, message_id: uuid.UUID) -> int:
    async with state.sessionmaker() as db:
        rows = await db.exec(select(Feedback).where(Feedback.message_id == message_id))
        return len(rows.all())


def _runtime(state: AppState, retriever: Retriever) -> Runtime:
    return Runtime(state.settings, state.jobs, state.redis, state.sessionmaker, retriever)


async def test_the_question_is_stored_and_queued_before_the_first_event(
    state: AppState, retriever: Retriever, client: httpx.AsyncClient
) -> None:
    left = await ask_and_leave(state, ck.create_thread(QUESTION))
    assert left.status == 200
    assert left.first_event.startswith(b"data: ")
    assert left.stored_then == ["user"]
    assert len(left.jobs_then) == 1
    # The reader is gone; the job still runs to its end and its answer is kept.
    await process_chat_job(_runtime(state, retriever), left.jobs_then[0])
    listed = await post(client, ck.list_items(left.thread_id), left.token)
    items = ck.ITEMS.validate_json(listed.content).data
    assert [type(i) for i in items] == [UserMessageItem, AssistantMessageItem]
    assert isinstance(items[0], UserMessageItem)
    assert items[0].id == f"msg_{left.jobs_then[0]}_user"


async def test_a_reloaded_thread_shows_the_question_and_the_answer_so_far(
    state: AppState, client: httpx.AsyncClient
) -> None:
    left = await ask_and_leave(state, ck.create_thread(QUESTION))
    [job_id] = left.jobs_then

    async def thread_items() -> list[Any]:
        listed = await post(client, ck.list_items(left.thread_id), left.token)
        assert listed.status_code == 200, listed.text
        return list(ck.ITEMS.validate_json(listed.content).data)

    queued = await thread_items()
    assert [type(i) for i in queued] == [UserMessageItem, AssistantMessageItem]
    assert queued[1].content[0].text  # what it is doing: no blank bubble

    await state.jobs.mark_running(job_id)
    await state.jobs.emit(job_id, EventType.TOKEN, {"delta": "A first try"})
    await state.jobs.emit(job_id, EventType.STATUS, {"status": "running", "restarted": True})
    await state.jobs.emit(job_id, EventType.TOKEN, {"delta": "Run `lumen home` "})
    await state.jobs.emit(job_id, EventType.TOKEN, {"delta": "[1]."})
    running = await thread_items()
    assert running[1].id == f"msg_{job_id}_assistant"
    assert running[1].content[0].text == "Run `lumen home` [1]."

    # The same through the plain history API, with where to follow the rest.
    messages = await client.get(
        f"/v1/sessions/{left.thread_id}/messages", headers={"X-Session-Token": left.token}
    )
    [question] = messages.json()
    pending = question["pending"]
    assert pending["job_id"] == job_id
    assert pending["status"] == "running"
    assert pending["answer_so_far"] == "Run `lumen home` [1]."
    status = await client.get(pending["status_url"])
    assert status.status_code == 200
    assert status.json()["status"] == "running"


async def test_a_failed_retry_erases_nothing_and_an_answered_one_replaces_the_exchange(
    state: AppState, retriever: Retriever, client: httpx.AsyncClient
) -> None:
    runtime = _runtime(state, retriever)
    first = await ask_and_leave(state, ck.create_thread(QUESTION))
    await process_chat_job(runtime, first.jobs_then[0])
    session = uuid.UUID(first.thread_id)
    question, answer = await state.history.messages(session)
    await state.history.add_feedback([answer], FeedbackRating.UP)

    retry = await ask_and_leave(
        state,
        ck.retry_after(first.thread_id, f"msg_{first.jobs_then[0]}_user"),
        thread_id=first.thread_id,
        token=first.token,
    )
    assert retry.status == 200
    [retry_job] = [job for job in retry.jobs_then if job not in first.jobs_then]
    await state.jobs.fail(retry_job, "llm_unavailable", "No model answered.")
    kept = await state.history.messages(session)
    assert [row.id for row in kept] == [question.id, answer.id]
    assert await _feedback_on(state, answer.id) == 1

    again = await ask_and_leave(
        state,
        ck.retry_after(first.thread_id, f"msg_{first.jobs_then[0]}_user"),
        thread_id=first.thread_id,
        token=first.token,
    )
    [answered_job] = [job for job in again.jobs_then if job not in retry.jobs_then]
    await process_chat_job(runtime, answered_job)
    replaced = await state.history.messages(session)
    assert [(row.role, str(row.job_id)) for row in replaced] == [
        ("user", answered_job),
        ("assistant", answered_job),
    ]
    assert replaced[0].content == QUESTION
    assert await _feedback_on(state, answer.id) == 0


async def test_retry_after_an_answer_is_refused_before_any_stream(
    state: AppState, retriever: Retriever, client: httpx.AsyncClient
) -> None:
    first = await ask_and_leave(state, ck.create_thread(QUESTION))
    await process_chat_job(_runtime(state, retriever), first.jobs_then[0])
    refused = await post(
        client, ck.retry_after(first.thread_id, f"msg_{first.jobs_then[0]}_assistant"), first.token
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "message_not_found"
