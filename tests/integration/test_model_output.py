"""Issue 26 on the real stack: API -> Redis -> Celery worker -> Agents SDK -> the fake
OpenAI-compatible server over HTTP -> Postgres. One stack for all five reports (each is one
question), so the tier pays for one worker start:

1. citations written `[1, 2]` are citations; 2. a `<think>` block split across chunks reaches
no reader and cites nothing; 3. an answer the token limit always cuts is served trimmed and
stored `truncated`; 4. a model that keeps calling search_docs is answered from what it found;
5. a ChatKit reader who leaves right after the first event finds the question, then the
answer, in the thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from chatkit.types import AssistantMessageItem, UserMessageItem

from tests import chatkit_client as ck
from tests.fake_llm import FakeLLM, Reply, text, tool_call
from tests.stack import Stack, stored_messages

pytestmark = pytest.mark.integration

SENTENCE = "The arm returns to its home pose with one command"
THOUGHT = "[2] is about the proxy, maybe irrelevant"
CUT = f"{SENTENCE} [1]. Before you start it, you must set"


def _last_user(body: dict[str, Any]) -> tuple[str, bool]:
    """The question of the current turn, and whether a search already answered in it."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    return str(messages[last].get("content")), any(
        m.get("role") == "tool" for m in messages[last + 1 :]
    )


def respond(body: dict[str, Any]) -> Reply | None:
    question, searched = _last_user(body)
    if "keeps searching" in question:
        return tool_call("search_docs", {"query": "home pose"})
    if not searched:
        return None  # the default: search with the question
    if "comma" in question:
        return text(f"{SENTENCE} [1, 2].")
    if "thinks" in question:
        return text(
            f"<think>{THOUGHT}</think>\n\n{SENTENCE} [1].",
            pieces=[
                "<thi",
                "nk>",
                THOUGHT[:12],
                THOUGHT[12:],
                "</th",
                "ink>\n\n",
                SENTENCE,
                " [1].",
            ],
        )
    if "cut" in question:
        return text(CUT, finish_reason="length")
    return None


def _events(stack: Stack, events_url: str) -> str:
    with stack.http.stream("GET", events_url) as response:
        return "".join(response.iter_text())


def _ask(stack: Stack, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    accepted = stack.chat(f"How do I send the arm to its home pose? ({question})")
    job = stack.wait(accepted["status_url"])
    assert job["status"] == "succeeded", (job, stack.log())
    return accepted, job["result"]


def test_provider_output_and_a_reader_who_leaves_on_the_real_stack(
    make_stack: Callable[..., Stack],
) -> None:
    with FakeLLM(respond=respond) as fake:
        stack = make_stack(llm_base_url=fake.base_url)

        _, comma = _ask(stack, "comma")
        assert not comma["refused"], comma
        assert [c["number"] for c in comma["citations"]] == [1, 2]

        thinks, result = _ask(stack, "thinks")
        assert not result["refused"], result
        assert [c["number"] for c in result["citations"]] == [1]
        streamed = _events(stack, thinks["events_url"])
        for shown in (result["answer"], streamed):
            assert "think" not in shown.replace("thinks", ""), shown
            assert "maybe irrelevant" not in shown, shown

        cut, result = _ask(stack, "cut")
        assert result["truncated"], result
        assert "you must set" not in result["answer"]
        rows = stored_messages(stack, cut["session_id"])
        assert [(row.role, row.truncated) for row in rows] == [("user", False), ("assistant", True)]

        searching = fake.model_counts["openai/gpt-oss-20b:free"]
        _, result = _ask(stack, "keeps searching")
        assert not result["refused"], result
        assert result["citations"]
        assert fake.model_counts["openai/gpt-oss-20b:free"] - searching == 7  # MAX_TURNS + 1

        # 5. ChatKit: the reader reloads right after sending (reads one event, then closes).
        with (
            httpx.Client(base_url=stack.base_url, timeout=30) as http,
            http.stream(
                "POST",
                "/v1/chatkit",
                content=ck.create_thread("How do I send the arm to its home pose?"),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            assert response.status_code == 200
            thread_id = response.headers["x-session-id"]
            token = response.headers["x-session-token"]
            next(response.iter_lines())

        def thread_items() -> list[Any]:
            listed = stack.http.post(
                "/v1/chatkit",
                content=ck.list_items(thread_id),
                headers={"X-Session-Token": token, "Content-Type": "application/json"},
            )
            assert listed.status_code == 200, listed.text
            return list(ck.ITEMS.validate_json(listed.content).data)

        deadline = time.monotonic() + 60
        while not [row for row in stored_messages(stack, thread_id) if row.role == "assistant"]:
            # The question is in the thread from the start, the job runs with no one listening.
            assert isinstance(thread_items()[0], UserMessageItem)
            assert time.monotonic() < deadline, stack.log()
            time.sleep(0.2)
        question, answer = stored_messages(stack, thread_id)
        items = thread_items()
        assert [type(i) for i in items] == [UserMessageItem, AssistantMessageItem]
        assert items[1].content[0].text == answer.content
