"""The HTTP contract with no services: fakeredis job store, SQLite history, in-memory broker."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kombu import Connection
from sqlmodel import select

from api.deps import AppState, get_state
from api.main import create_app
from shared.access_tokens import issue_session_token, read_session_token, read_stream_token
from shared.jobs import JobKind, JobStatus, JobStore
from shared.queues import make_sender
from shared.settings import Settings
from tests.unit.conftest import SECRET

pytestmark = pytest.mark.unit


def queued_messages(state: AppState, queue: str = "chat") -> int:
    with Connection("memory://") as conn:
        return int(conn.default_channel.queue_declare(queue, passive=False).message_count)


async def job_keys(state: AppState) -> list[Any]:
    return [k async for k in state.jobs.redis.scan_iter("bookchat:job:*")]


async def test_chat_is_accepted_queued_and_readable_with_its_token(
    client: httpx.AsyncClient, state: AppState
) -> None:
    response = await client.post("/v1/chat", json={"message": "How do I install Lumen?"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"job_id", "session_id", "session_token", "status_url", "events_url"}
    claims = read_session_token(SECRET, body["session_token"])
    assert claims is not None
    assert claims.session_id == body["session_id"]
    # The URLs carry a stream token for this job only, never the session token.
    status_path, _, stream = body["status_url"].partition("?token=")
    assert status_path == f"/v1/jobs/{body['job_id']}"
    assert read_stream_token(SECRET, stream) == body["job_id"]
    assert body["events_url"] == f"/v1/jobs/{body['job_id']}/events?token={stream}"
    assert body["session_token"] not in body["status_url"] + body["events_url"]

    job = await state.jobs.get(body["job_id"])
    assert job is not None
    assert job.status is JobStatus.QUEUED
    assert job.kind is JobKind.CHAT
    assert job.meta["request"]["message"] == "How do I install Lumen?"

    status = await client.get(body["status_url"])
    assert status.status_code == 200
    assert status.json()["status"] == "queued"
    assert status.headers["etag"]
    not_modified = await client.get(
        body["status_url"], headers={"If-None-Match": status.headers["etag"]}
    )
    assert not_modified.status_code == 304


async def test_job_needs_its_sessions_token(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat", json={"message": "hi there"})).json()
    no_token = await client.get(f"/v1/jobs/{body['job_id']}")
    assert no_token.status_code == 403
    assert no_token.json()["code"] == "forbidden"
    other = issue_session_token(SECRET, str(uuid.uuid4()), ttl_s=600)
    wrong = await client.get(f"/v1/jobs/{body['job_id']}", params={"token": other})
    assert wrong.status_code == 403


async def test_unknown_job_is_404_with_code(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/jobs/{uuid.uuid4()}", params={"token": "x"})
    assert response.status_code == 404
    assert response.json()["code"] == "job_not_found"
    malformed = await client.get("/v1/jobs/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "validation_error"


async def test_continuing_a_session_requires_its_token(client: httpx.AsyncClient) -> None:
    first = (await client.post("/v1/chat", json={"message": "first question"})).json()
    denied = await client.post(
        "/v1/chat", json={"message": "follow-up", "session_id": first["session_id"]}
    )
    assert denied.status_code == 403
    allowed = await client.post(
        "/v1/chat",
        json={"message": "follow-up", "session_id": first["session_id"]},
        headers={"X-Session-Token": first["session_token"]},
    )
    assert allowed.status_code == 202
    assert allowed.json()["session_id"] == first["session_id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"message": ""}', "application/json", 422, "validation_error"),
        (b'{"message": "   "}', "application/json", 422, "validation_error"),
        (b'{"message": "' + b"x" * 4001 + b'"}', "application/json", 422, "validation_error"),
        (b'{"message": "\xff\xfe bad"}', "application/json", 400, "invalid_encoding"),
        (b'{"message": "unterminated', "application/json", 400, "malformed_json"),
        (b'{"message": 42}', "application/json", 422, "validation_error"),
        (b'{"message": ["a"]}', "application/json", 422, "validation_error"),
        (b'{"message": "ok", "session_id": "nope"}', "application/json", 422, "validation_error"),
        (b'{"message": "ok", "extra": 1}', "application/json", 422, "validation_error"),
        (b'{"message": "ok\\u0000"}', "application/json", 422, "validation_error"),
        (b"[]", "application/json", 422, "validation_error"),
        (b"message=hi", "application/x-www-form-urlencoded", 422, "validation_error"),
    ],
)
async def test_bad_input_is_4xx_with_code_and_nothing_enqueued(
    client: httpx.AsyncClient,
    state: AppState,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = await client.post(
        "/v1/chat", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert await job_keys(state) == []


async def test_queue_down_is_503_and_leaves_no_queued_job(
    settings: Settings, state: AppState
) -> None:
    state.sender = make_sender(
        "redis://127.0.0.1:1/0", broker_connection_timeout=0.2, broker_connection_max_retries=0
    )
    state.sender.conf.broker_transport_options = {"max_retries": 0}
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.post("/v1/chat", json={"message": "hello"})
    assert response.status_code == 503
    assert response.json()["code"] == "queue_unavailable"
    assert response.headers["retry-after"]
    for key in await job_keys(state):
        if not key.endswith(b":events"):
            job = await state.jobs.get(key.decode().rsplit(":", 1)[1])
            assert job is not None
            assert job.status is JobStatus.FAILED


async def test_healthz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_openapi_documents_error_bodies(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/chat" in schema["paths"]
    assert "422" in schema["paths"]["/v1/chat"]["post"]["responses"]


async def test_oversized_bodies_are_413_by_length_and_by_stream(client: httpx.AsyncClient) -> None:
    big = b'{"message": "' + b"x" * 70_000 + b'"}'
    declared = await client.post(
        "/v1/chat", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    streamed = await client.post(
        "/v1/chat", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "payload_too_large"


async def test_idempotency_key_returns_the_same_job(
    client: httpx.AsyncClient, state: AppState
) -> None:
    headers = {"Idempotency-Key": "retry-abc"}
    first = await client.post("/v1/chat", json={"message": "same question"}, headers=headers)
    second = await client.post("/v1/chat", json={"message": "same question"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert len([k for k in await job_keys(state) if not k.endswith(b":events")]) == 1
    other = await client.post("/v1/chat", json={"message": "different"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


@pytest.mark.usefixtures("one_rate_window")
async def test_rate_limit_per_session_is_429_with_retry_after(
    client: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.rate_limit_session_per_minute = 2
    first = (await client.post("/v1/chat", json={"message": "one"})).json()
    headers = {"X-Session-Token": first["session_token"]}
    body = {"message": "again", "session_id": first["session_id"]}
    codes = [
        (await client.post("/v1/chat", json=body, headers=headers)).status_code for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    limited = await client.post("/v1/chat", json=body, headers=headers)
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 121  # a sliding minute: up to two


async def test_deep_queue_is_503_with_retry_after(
    client: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.max_queued_chat_jobs = 3
    await state.jobs.redis.rpush("chat", *[b"x"] * 3)
    response = await client.post("/v1/chat", json={"message": "anyone there?"})
    assert response.status_code == 503
    assert response.json()["code"] == "queue_full"
    assert response.headers["retry-after"] == "10"
    assert await job_keys(state) == []


async def _queue_chat_job(state: AppState, *, waited_s: float) -> None:
    """A chat job waiting in the queue for `waited_s`, its message as kombu's Redis transport
    lays it out (the integration tier checks the real layout: test_capacity.py)."""
    import json
    import time

    job = await state.jobs.create(JobKind.CHAT)
    await state.jobs.redis.hset(JobStore.key(job.id), "created_at", time.time() - waited_s)
    message = {"body": "W10=", "headers": {"kwargsrepr": f"{{'job_id': '{job.id}'}}"}}
    await state.jobs.redis.lpush("chat", json.dumps(message))


async def test_a_question_no_worker_could_start_in_time_is_503_with_retry_after(
    client: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.chat_queue_deadline_s = 10
    await _queue_chat_job(state, waited_s=2)  # waiting, within the deadline
    assert (await client.post("/v1/chat", json={"message": "one"})).status_code == 202
    await state.jobs.redis.delete("chat")
    await _queue_chat_job(state, waited_s=11)
    await _queue_chat_job(state, waited_s=1)  # newer ones do not hide the oldest
    response = await client.post("/v1/chat", json={"message": "anyone there?"})
    assert response.status_code == 503
    assert response.json()["code"] == "queue_full"
    assert response.headers["retry-after"] == "10"
    state.settings.chat_queue_deadline_s = 0  # off: the depth limit alone
    assert (await client.post("/v1/chat", json={"message": "two"})).status_code == 202


async def test_a_chat_job_that_waited_too_long_ends_expired(
    settings: Settings, state: AppState, client: httpx.AsyncClient
) -> None:
    from types import SimpleNamespace

    from worker.chat_job import process_chat_job

    accepted = (await client.post("/v1/chat", json={"message": "still there?"})).json()
    # Queued (and not touched since) long ago.
    await state.jobs.redis.hset(
        JobStore.key(accepted["job_id"]), mapping={"created_at": 0, "updated_at": 0}
    )
    runtime = SimpleNamespace(settings=settings, jobs=state.jobs)
    await process_chat_job(runtime, accepted["job_id"])
    job = (await client.get(accepted["status_url"])).json()
    assert job["status"] == "expired"
    assert job["error"]["code"] == "job_expired"


async def test_cors_allows_only_the_configured_docs_origin(
    settings: Settings, state: AppState
) -> None:
    settings.cors_origins = ["https://docs.example.org"]
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        preflight = await http.options(
            "/v1/chat",
            headers={
                "Origin": "https://docs.example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-session-token",
            },
        )
        allowed = await http.post(
            "/v1/chat", json={"message": "hi"}, headers={"Origin": "https://docs.example.org"}
        )
        foreign = await http.post(
            "/v1/chat", json={"message": "hi"}, headers={"Origin": "https://evil.example"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://docs.example.org"
    assert allowed.headers["access-control-allow-origin"] == "https://docs.example.org"
    assert "retry-after" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers


async def test_feedback_is_stored_for_the_sessions_own_message(
    client: httpx.AsyncClient, state: AppState
) -> None:
    from shared.history import Exchange
    from shared.models import Feedback, Message, MessageRole

    session_id = str(uuid.uuid4())
    message_id = await state.history.record(
        Exchange(
            job_id=str(uuid.uuid4()),
            session_id=session_id,
            site="default",
            question="q?",
            answer="a [1]",
            citations=[],
            refused=False,
            model="m",
        )
    )
    url = f"/v1/messages/{message_id}/feedback"
    mine = {"X-Session-Token": issue_session_token(SECRET, session_id, ttl_s=600)}
    other = {"X-Session-Token": issue_session_token(SECRET, str(uuid.uuid4()), ttl_s=600)}
    # Without a valid token: 403, whether or not the message exists. With another session's
    # token: the 404 of an unknown id. Either way the answer tells nothing of the id.
    unknown = f"/v1/messages/{uuid.uuid4()}/feedback"
    for headers in ({}, {"X-Session-Token": "not-a-token"}):
        for target in (url, unknown):
            refused = await client.post(target, json={"rating": "up"}, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), target
    foreign = await client.post(url, json={"rating": "up"}, headers=other)
    assert (foreign.status_code, foreign.json()) == (
        404,
        (await client.post(unknown, json={"rating": "up"}, headers=other)).json(),
    )
    assert foreign.json()["code"] == "message_not_found"
    too_long = await client.post(url, json={"rating": "up", "comment": "x" * 2001}, headers=mine)
    assert too_long.status_code == 422
    assert "at most 2000 characters" in too_long.text, too_long.text
    bad = await client.post(url, json={"rating": "meh"}, headers=mine)
    assert bad.status_code == 422
    missing = await client.post(
        f"/v1/messages/{uuid.uuid4()}/feedback", json={"rating": "up"}, headers=mine
    )
    assert missing.json()["code"] == "message_not_found"
    async with state.sessionmaker() as db:
        question_id = (
            await db.exec(select(Message.id).where(Message.role == MessageRole.USER))
        ).one()
    on_question = await client.post(
        f"/v1/messages/{question_id}/feedback", json={"rating": "up"}, headers=mine
    )
    assert (on_question.status_code, on_question.json()["code"]) == (404, "message_not_found")
    stored = await client.post(url, json={"rating": "down", "comment": "wrong page"}, headers=mine)
    assert stored.status_code == 201
    async with state.sessionmaker() as db:
        rows = (await db.exec(select(Feedback))).all()
    assert [(r.rating, r.comment) for r in rows] == [("down", "wrong page")]


async def test_development_allows_any_localhost_origin_and_logs_a_refused_preflight_once(
    settings: Settings, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    preflight_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,idempotency-key",
    }

    async def preflight(app_settings: Settings, origin: str) -> httpx.Response:
        app = create_app(app_settings)
        app.dependency_overrides[get_state] = lambda: state
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            return await http.options("/v1/chat", headers={"Origin": origin, **preflight_headers})

    assert (await preflight(settings, "http://localhost:3000")).status_code == 200
    assert (await preflight(settings, "http://127.0.0.1:5123")).status_code == 200
    production_like = settings.model_copy(update={"cors_allow_localhost": False})
    assert (await preflight(production_like, "http://localhost:3000")).status_code == 400

    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    caplog.set_level(logging.WARNING, logger="api.cors")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        for _ in range(3):
            refused = await http.options(
                "/v1/chat", headers={"Origin": "https://docs.example.com", **preflight_headers}
            )
            assert refused.status_code == 400
    told = [
        r.getMessage()
        for r in caplog.records
        if r.name == "api.cors" and "https://docs.example.com" in r.getMessage()
    ]
    assert len(told) == 1
    assert "https://docs.example.com" in told[0]
    assert "BOOKCHAT_CORS_ORIGINS='[\"https://docs.example.com\"]'" in told[0]


async def test_api_docs_need_no_network(client: httpx.AsyncClient) -> None:
    """/docs and /redoc load their scripts and styles from the API itself, not from a CDN."""
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets, page
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            assert (await client.get(asset)).status_code == 200, asset
