"""Access tokens (issue 16, item 1): the session token only in a header, job-scoped stream
tokens in the returned URLs, expiry and revocation (shared/access_tokens.py, api/deps.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from api.deps import AppState
from shared.access_tokens import CLOCK_LEEWAY_S, issue_session_token, issue_stream_token
from tests.unit.conftest import SECRET

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


async def asked(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/chat", json={"message": "How do I install Lumen?", **body})
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def test_the_returned_urls_work_as_given_and_hold_no_session_token(
    client: httpx.AsyncClient, state: AppState
) -> None:
    accepted = await asked(client)
    assert accepted["session_token"] not in accepted["status_url"] + accepted["events_url"]
    assert (await client.get(accepted["status_url"])).status_code == 200
    await state.jobs.succeed(accepted["job_id"], {"answer": "yes"})
    events = await client.get(accepted["events_url"])
    assert events.status_code == 200
    assert "event: done" in events.text


async def test_a_session_token_in_a_url_opens_nothing(client: httpx.AsyncClient) -> None:
    accepted = await asked(client)
    token = accepted["session_token"]
    job = await client.get(f"/v1/jobs/{accepted['job_id']}", params={"token": token})
    assert job.status_code == 403
    history = await client.get(
        f"/v1/sessions/{accepted['session_id']}/messages", params={"token": token}
    )
    assert history.status_code == 403
    header = {"X-Session-Token": token}
    assert (await client.get(f"/v1/jobs/{accepted['job_id']}", headers=header)).status_code == 200
    messages = f"/v1/sessions/{accepted['session_id']}/messages"
    assert (await client.get(messages, headers=header)).status_code == 200


async def test_a_stream_token_reads_its_own_job_only(client: httpx.AsyncClient) -> None:
    first, second = await asked(client), await asked(client)
    stream = first["status_url"].partition("?token=")[2]
    other_job = await client.get(f"/v1/jobs/{second['job_id']}", params={"token": stream})
    assert other_job.status_code == 403
    as_session = {"X-Session-Token": stream}
    messages = f"/v1/sessions/{first['session_id']}/messages"
    assert (await client.get(messages, headers=as_session)).status_code == 403
    follow_up = await client.post(
        "/v1/chat",
        json={"message": "And then?", "session_id": first["session_id"]},
        headers=as_session,
    )
    assert follow_up.status_code == 403


async def test_an_expired_session_token_is_refused(client: httpx.AsyncClient) -> None:
    accepted = await asked(client)
    old = issue_session_token(SECRET, accepted["session_id"], ttl_s=60, now=time.time() - 3600)
    response = await client.get(
        f"/v1/sessions/{accepted['session_id']}/messages", headers={"X-Session-Token": old}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_an_expired_stream_token_is_refused(client: httpx.AsyncClient) -> None:
    accepted = await asked(client)
    expired = issue_stream_token(
        SECRET, accepted["job_id"], expires_at=time.time() - CLOCK_LEEWAY_S - 5
    )
    response = await client.get(f"/v1/jobs/{accepted['job_id']}", params={"token": expired})
    assert response.status_code == 403


async def test_a_token_signed_with_another_secret_is_refused(client: httpx.AsyncClient) -> None:
    accepted = await asked(client)
    forged = issue_stream_token(b"another-secret", accepted["job_id"], expires_at=time.time() + 60)
    response = await client.get(f"/v1/jobs/{accepted['job_id']}", params={"token": forged})
    assert response.status_code == 403


async def test_a_revoked_session_opens_nothing_any_more(
    client: httpx.AsyncClient, state: AppState
) -> None:
    accepted = await asked(client)
    header = {"X-Session-Token": accepted["session_token"]}
    sid = accepted["session_id"]
    stranger = {"X-Session-Token": issue_session_token(SECRET, str(uuid.uuid4()), ttl_s=600)}
    assert (await client.post(f"/v1/sessions/{sid}/revoke", headers=stranger)).status_code == 403

    revoked = await client.post(f"/v1/sessions/{sid}/revoke", headers=header)
    assert revoked.status_code == 204
    assert (await client.get(f"/v1/sessions/{sid}/messages", headers=header)).status_code == 403
    assert (await client.get(accepted["status_url"])).status_code == 403
    again = await client.post(
        "/v1/chat", json={"message": "And then?", "session_id": sid}, headers=header
    )
    assert again.status_code == 403


async def test_a_token_from_a_replica_whose_clock_is_ahead_is_read(
    client: httpx.AsyncClient,
) -> None:
    """Issue 30: a replica 30 s ahead issues an `iat` in this one's future; PyJWT refused it."""
    accepted = await asked(client)
    sid = accepted["session_id"]
    ahead = {"X-Session-Token": issue_session_token(SECRET, sid, ttl_s=600, now=time.time() + 30)}
    assert (await client.get(f"/v1/sessions/{sid}/messages", headers=ahead)).status_code == 200


async def test_a_revocation_covers_tokens_from_a_replica_whose_clock_is_ahead(
    client: httpx.AsyncClient,
) -> None:
    """Issue 30: revoked by a replica whose clock is 30 s behind the issuing one, the token's
    `iat` fell after the recorded revocation time and it kept opening the session."""
    accepted = await asked(client)
    sid = accepted["session_id"]
    ahead = {"X-Session-Token": issue_session_token(SECRET, sid, ttl_s=600, now=time.time() + 30)}
    header = {"X-Session-Token": accepted["session_token"]}
    assert (await client.post(f"/v1/sessions/{sid}/revoke", headers=header)).status_code == 204
    assert (await client.get(f"/v1/sessions/{sid}/messages", headers=ahead)).status_code == 403


async def test_an_idempotent_replay_never_reopens_a_revoked_session(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Issue 30, item 9: a replay of a POST /v1/chat whose job had expired was answered with a
    session token issued *now*, newer than the revocation, so it opened the session again."""
    key = {"Idempotency-Key": "replayed-after-revocation"}
    body = {"message": "How do I install Lumen?"}
    first = await client.post("/v1/chat", json=body, headers=key)
    assert first.status_code == 202, first.text
    accepted = first.json()
    sid = accepted["session_id"]
    header = {"X-Session-Token": accepted["session_token"]}
    assert (await client.post(f"/v1/sessions/{sid}/revoke", headers=header)).status_code == 204
    # The job's keys expire (its TTL) while the idempotency key is still held.
    await state.redis.delete(
        state.jobs.key(accepted["job_id"]), state.jobs.events_key(accepted["job_id"])
    )

    replay = await client.post("/v1/chat", json=body, headers=key)
    assert replay.status_code == 202, replay.text
    assert replay.json()["session_id"] == sid
    replayed = {"X-Session-Token": replay.json()["session_token"]}
    assert (await client.get(f"/v1/sessions/{sid}/messages", headers=replayed)).status_code == 403
    again = await client.post(
        "/v1/chat", json={"message": "And then?", "session_id": sid}, headers=replayed
    )
    assert again.status_code == 403
