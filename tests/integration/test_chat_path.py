"""Issue 2's end-to-end path on real components: API -> Redis -> Celery worker -> Agents SDK
(offline model, or the fake OpenAI-compatible server) -> Qdrant -> Postgres -> job store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fake_llm import FakeLLM
from tests.stack import Stack, stored_messages

pytestmark = pytest.mark.integration

QUESTION = "How do I send the arm to its home pose?"


def test_question_travels_the_queue_and_comes_back_cited(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    accepted = stack.chat(QUESTION)
    job = stack.wait(accepted["status_url"])
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    assert result["refused"] is False, result
    assert result["citations"], result
    assert any("first-move" in c["path"] for c in result["citations"]), result["citations"]
    assert result["model"] == "bookchat-offline-extractive"

    rows = stored_messages(stack, accepted["session_id"])
    assert [row.role for row in rows] == ["user", "assistant"]
    assert rows[0].content == QUESTION
    assert rows[1].content == result["answer"]
    assert rows[1].citations == result["citations"]
    assert str(rows[1].id) == result["message_id"]

    history = stack.http.get(
        f"/v1/sessions/{accepted['session_id']}/messages",
        headers={"X-Session-Token": accepted["session_token"]},
    )
    assert history.status_code == 200
    assert [m["role"] for m in history.json()] == ["user", "assistant"]


def test_openai_compatible_model_over_http_calls_the_tool(
    make_stack: Callable[..., Stack],
) -> None:
    with FakeLLM() as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        accepted = stack.chat(QUESTION)
        job = stack.wait(accepted["status_url"])
        assert job["status"] == "succeeded", (job, stack.log())
        result = job["result"]
        assert result["refused"] is False
        assert result["citations"]
        assert result["model"] == "openai/gpt-oss-20b:free"

        first, second = fake.requests[0], fake.requests[1]
        assert first["tools"][0]["function"]["name"] == "search_docs"
        assert first["messages"][-1] == {"role": "user", "content": QUESTION}
        tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
        assert tool_messages
        assert "[1]" in tool_messages[0]["content"]

    rows = stored_messages(stack, accepted["session_id"])
    assert rows[1].model == "openai/gpt-oss-20b:free"
    assert rows[1].usage is not None


def test_follow_up_in_a_session_sends_history_to_the_model(
    make_stack: Callable[..., Stack],
) -> None:
    with FakeLLM() as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        first = stack.chat(QUESTION)
        assert stack.wait(first["status_url"])["status"] == "succeeded"
        follow = stack.http.post(
            "/v1/chat",
            json={"message": "and how often?", "session_id": first["session_id"]},
            headers={"X-Session-Token": first["session_token"]},
        )
        assert follow.status_code == 202
        assert stack.wait(follow.json()["status_url"])["status"] == "succeeded"
        last_first_turn = fake.requests[-2]
        contents = [m.get("content") for m in last_first_turn["messages"]]
        assert QUESTION in contents
    assert len(stored_messages(stack, first["session_id"])) == 4


def test_events_stream_carries_tokens_and_done(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    accepted = stack.chat(QUESTION)
    stack.wait(accepted["status_url"])
    with stack.http.stream("GET", accepted["events_url"]) as response:
        assert response.status_code == 200
        body = "".join(response.iter_text())
    events = [
        line.split(":", 1)[1].strip() for line in body.splitlines() if line.startswith("event:")
    ]
    assert events[0] == "status"
    assert "token" in events
    assert events[-1] == "done"
    assert events.index("citations") > events.index("token")
