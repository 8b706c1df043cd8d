"""POST /v1/hooks/reindex: GitHub-style HMAC signature over the raw body, then an ingest job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest
from pydantic import SecretStr

from api.deps import AppState, get_state
from api.main import create_app
from api.routes.hooks import signature_of
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobKind, JobStatus, JobStore
from shared.migrate import upgrade_database
from shared.queues import make_sender
from shared.settings import Settings
from tests.unit.test_api import job_keys, queued_messages

pytestmark = pytest.mark.unit

SECRET = "webhook-secret-for-tests"
BODY = b'{"ref": "refs/heads/main", "after": "0123abc"}'


def push(n: int) -> bytes:
    """The body of the n-th push (each push has its own `after` commit)."""
    return b'{"ref": "refs/heads/main", "after": "%040x"}' % n


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    settings.webhook_secret = SecretStr(SECRET)
    settings.data_dir.mkdir(parents=True)
    await asyncio.to_thread(upgrade_database, settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    yield AppState(
        settings=settings,
        redis=(fake_redis := fakeredis.FakeAsyncRedis()),
        jobs=JobStore(fake_redis, ttl_s=600),
        sender=make_sender("memory://"),
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        secret=b"unit-secret",
    )
    await engine.dispose()


@pytest.fixture
async def client(settings: Settings, state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


async def post(
    client: httpx.AsyncClient, body: bytes, signature: str | None, **headers: str
) -> httpx.Response:
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    headers.setdefault("Content-Type", "application/json")
    return await client.post("/v1/hooks/reindex", content=body, headers=headers)


async def test_right_signature_queues_an_incremental_ingestion(
    client: httpx.AsyncClient, state: AppState, settings: Settings
) -> None:
    before = queued_messages(state, "ingest")
    response = await post(client, BODY, signature_of(SECRET.encode(), BODY))
    assert response.status_code == 202, response.text
    job = await state.jobs.get(response.json()["job_id"])
    assert job is not None
    assert job.kind is JobKind.INGEST
    assert job.status is JobStatus.QUEUED
    assert job.meta["request"] == {
        "site_dir": str(settings.site_dir),
        "site": settings.site_name,
        "site_url": settings.site_url,
        "full_rebuild": False,
        "from_repo": False,
    }
    assert queued_messages(state, "ingest") == before + 1


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",  # empty
        "sha256=" + "0" * 64,  # wrong
        signature_of(b"another-secret", BODY),  # signed with another secret
        signature_of(SECRET.encode(), BODY).removeprefix("sha256="),  # no scheme
        "sha1=" + signature_of(SECRET.encode(), BODY).removeprefix("sha256="),  # other scheme
    ],
)
async def test_missing_or_wrong_signature_is_401_and_queues_nothing(
    client: httpx.AsyncClient, state: AppState, signature: str | None
) -> None:
    response = await post(client, BODY, signature)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert await job_keys(state) == []


async def test_tampered_body_is_rejected(client: httpx.AsyncClient, state: AppState) -> None:
    signature = signature_of(SECRET.encode(), BODY)
    tampered = BODY.replace(b"main", b"evil")
    assert (await post(client, tampered, signature)).status_code == 401
    # Same JSON, different bytes: the signature covers the raw body, not its meaning.
    assert (await post(client, BODY + b" ", signature)).status_code == 401
    assert await job_keys(state) == []


async def test_no_secret_configured_refuses_everything(
    client: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.webhook_secret = None
    response = await post(client, BODY, signature_of(b"", BODY))
    assert response.status_code == 401
    assert await job_keys(state) == []


async def test_github_ping_is_answered_without_queueing(
    client: httpx.AsyncClient, state: AppState
) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    response = await post(
        client, body, signature_of(SECRET.encode(), body), **{"X-GitHub-Event": "ping"}
    )
    assert response.status_code == 200
    assert await job_keys(state) == []


async def test_a_replayed_delivery_queues_nothing_again(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Issue 16, item 4: one valid body + signature + delivery id sent 150 times used to
    queue 150 ingestion jobs."""
    before = queued_messages(state, "ingest")
    signature = signature_of(SECRET.encode(), BODY)
    delivery = {"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    first = await post(client, BODY, signature, **delivery)
    assert first.status_code == 202, first.text
    for _ in range(30):
        again = await post(client, BODY, signature, **delivery)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "duplicate"
    assert queued_messages(state, "ingest") == before + 1
    assert len([k for k in await job_keys(state) if not k.endswith(b":events")]) == 1


async def test_reindex_requests_coalesce_into_one_pending_job(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Distinct deliveries while a re-index waits: they all get the waiting job; once it
    runs, the next request queues exactly one more."""
    before = queued_messages(state, "ingest")
    ids = set()
    for n in range(10):
        body = push(n)
        response = await post(
            client, body, signature_of(SECRET.encode(), body), **{"X-GitHub-Delivery": f"d-{n}"}
        )
        assert response.status_code == 202, response.text
        ids.add(response.json()["job_id"])
    assert len(ids) == 1
    assert queued_messages(state, "ingest") == before + 1

    [running] = ids
    await state.jobs.mark_running(running)  # the worker took it: the next change must queue
    later = {
        (await post(client, push(n), signature_of(SECRET.encode(), push(n)))).json()["job_id"]
        for n in range(10, 15)
    }
    assert len(later) == 1
    assert running not in later
    assert queued_messages(state, "ingest") == before + 2


async def test_a_malformed_delivery_id_is_422(client: httpx.AsyncClient) -> None:
    signature = signature_of(SECRET.encode(), BODY)
    response = await post(client, BODY, signature, **{"X-GitHub-Delivery": "a b/../c"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_captured_body_under_new_delivery_ids_queues_nothing_again(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Issue 30: the delivery id is not signed, so a replay under a new id (or none) used to
    re-index every time. The signed body is the key."""
    before = queued_messages(state, "ingest")
    signature = signature_of(SECRET.encode(), BODY)
    first = await post(client, BODY, signature, **{"X-GitHub-Delivery": "original"})
    assert first.status_code == 202, first.text
    await state.jobs.mark_running(first.json()["job_id"])  # nothing left waiting to coalesce into
    for n in range(20):
        headers = {"X-GitHub-Delivery": f"forged-{n}"} if n % 2 else {}
        again = await post(client, BODY, signature, **headers)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "duplicate"
    assert queued_messages(state, "ingest") == before + 1


def _push(ref: str, clone_url: str, default_branch: str = "main") -> bytes:
    payload = {
        "ref": ref,
        "after": "0123abc",
        "repository": {
            "full_name": "acme/site",
            "clone_url": clone_url,
            "default_branch": default_branch,
        },
    }
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("site_ref", "body", "queued"),
    [
        (None, _push("refs/heads/main", "https://github.com/acme/site.git"), True),
        (None, _push("refs/heads/feature", "https://github.com/acme/site.git"), False),
        ("release", _push("refs/heads/release", "https://github.com/acme/site.git"), True),
        ("release", _push("refs/heads/main", "https://github.com/acme/site.git"), False),
        ("v2", _push("refs/tags/v2", "https://github.com/acme/site.git"), True),
        (None, _push("refs/heads/main", "https://github.com/acme/other.git"), False),
    ],
)
async def test_with_a_site_repo_only_a_push_to_its_repo_and_ref_queues(
    client: httpx.AsyncClient,
    state: AppState,
    site_ref: str | None,
    body: bytes,
    queued: bool,
) -> None:
    # the configured URL carries a token and another form (ssh) than the payload's
    state.settings.site_repo = SecretStr("https://x-access-token:tok3n@github.com/Acme/site")
    state.settings.site_ref = site_ref
    before = queued_messages(state, "ingest")
    response = await post(client, body, signature_of(SECRET.encode(), body), **PUSH)
    if queued:
        assert response.status_code == 202, response.text
        job = await state.jobs.get(response.json()["job_id"])
        assert job is not None
        assert job.meta["request"]["from_repo"] is True
        assert "tok3n" not in json.dumps(job.meta)
        assert queued_messages(state, "ingest") == before + 1
    else:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ignored"
        assert queued_messages(state, "ingest") == before


async def test_with_a_site_repo_other_events_queue_nothing(
    client: httpx.AsyncClient, state: AppState
) -> None:
    state.settings.site_repo = SecretStr("git@github.com:acme/site.git")
    body = b'{"action": "completed"}'
    headers = {"X-GitHub-Event": "workflow_run"}
    response = await post(client, body, signature_of(SECRET.encode(), body), **headers)
    assert response.json() == {"status": "ignored", "reason": "event 'workflow_run' is not a push"}


PUSH = {"X-GitHub-Event": "push"}
