"""Every request field is validated at the edge (issue 16, item 7): no NUL or other control
character in any stored text, page URLs http(s) and bounded. Each is a 422 with a stable code
and nothing is queued or stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from api.deps import AppState
from shared.history import Exchange
from tests import chatkit_client as ck

pytestmark = pytest.mark.unit

BAD_TEXT = ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\x85b", "a\ud800b"]
BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<b>x</b>",
    "file:///etc/passwd",
    "//evil.example/x",
    "/docs/intro",
    "https://",
    "https://docs.example.org/a\x00b",
    "https://docs.example.org/a b",
    "https://docs.example.org:99999/",
    "https://docs.example.org/" + "a" * 2100,
]


async def job_count(state: AppState) -> int:
    return len([k async for k in state.redis.scan_iter("bookchat:job:*") if b":events" not in k])


async def post_json(
    client: httpx.AsyncClient, url: str, body: Any, **headers: str
) -> httpx.Response:
    """JSON with \\u escapes (a lone surrogate cannot be sent as UTF-8, only escaped)."""
    headers["Content-Type"] = "application/json"
    return await client.post(url, content=json.dumps(body), headers=headers)


def assert_422(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("field", ["message", "selection"])
@pytest.mark.parametrize("text", BAD_TEXT)
async def test_control_characters_in_chat_text_are_refused(
    client: httpx.AsyncClient, state: AppState, field: str, text: str
) -> None:
    body: dict[str, Any] = {"message": "How do I install it?", field: text}
    assert_422(await post_json(client, "/v1/chat", body))
    assert await job_count(state) == 0


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_page_url_must_be_an_http_url(
    client: httpx.AsyncClient, state: AppState, url: str
) -> None:
    assert_422(await client.post("/v1/chat", json={"message": "Hi there", "page_url": url}))
    assert_422(await client.post("/v1/chatkit", content=ck.create_thread("Hi there", page_url=url)))
    assert await job_count(state) == 0


async def test_a_good_page_url_is_accepted(client: httpx.AsyncClient) -> None:
    body = {"message": "Hi there", "page_url": "https://docs.example.org/book/intro?x=1#top"}
    assert (await client.post("/v1/chat", json=body)).status_code == 202


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_control_characters_in_a_retrieve_query_or_filter_are_refused(
    client: httpx.AsyncClient, text: str
) -> None:
    assert_422(await post_json(client, "/v1/retrieve", {"query": text}))
    body = {"query": "install", "filters": {"path_prefix": text}}
    assert_422(await post_json(client, "/v1/retrieve", body))


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_control_characters_in_a_feedback_comment_are_refused(
    client: httpx.AsyncClient, state: AppState, text: str
) -> None:
    accepted = (await client.post("/v1/chat", json={"message": "Hi there"})).json()
    message_id = await state.history.record(
        Exchange(
            job_id=accepted["job_id"],
            session_id=accepted["session_id"],
            site="default",
            question="Hi there",
            answer="Hello [1]",
            citations=[],
            refused=False,
        )
    )
    response = await post_json(
        client,
        f"/v1/messages/{message_id}/feedback",
        {"rating": "up", "comment": text},
        **{"X-Session-Token": accepted["session_token"]},
    )
    assert_422(response)


async def test_feedback_is_one_per_message_and_an_update_replaces_it(
    client: httpx.AsyncClient, state: AppState
) -> None:
    """Issue 16, item 8: 150 comments on one message used to be 150 rows."""
    from sqlmodel import select

    from shared.models import Feedback

    accepted = (await client.post("/v1/chat", json={"message": "Hi there"})).json()
    message_id = await state.history.record(
        Exchange(
            job_id=accepted["job_id"],
            session_id=accepted["session_id"],
            site="default",
            question="Hi there",
            answer="Hello [1]",
            citations=[],
            refused=False,
        )
    )
    headers = {"X-Session-Token": accepted["session_token"]}
    url = f"/v1/messages/{message_id}/feedback"
    for i in range(20):
        body = {"rating": "up" if i % 2 else "down", "comment": f"take {i}"}
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 201, response.text
    async with state.sessionmaker() as db:
        rows = (await db.exec(select(Feedback).where(Feedback.message_id == message_id))).all()
    assert [(row.rating, row.comment) for row in rows] == [("up", "take 19")]
