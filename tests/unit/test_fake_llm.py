"""The fake LLM server, driven by the real `openai` client and the real Agents SDK.

These pin the fake's fidelity: if the SDK or client can parse what it sends, the pipeline's
end-to-end tests and benchmarks exercise the same code paths a real provider would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.responses import ResponseTextDeltaEvent

from tests.fake_llm import (
    FakeLLM,
    Reply,
    cut_stream,
    error,
    hang,
    malformed,
    stream_error,
    text,
    tool_call,
    tool_calls,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "How do I install bookchat?"}]
PASSAGES = (
    "[3] Guide > Install\nRun pip install bookchat. Then configure the site.\n\n[4] Other\nx."
)


@pytest.fixture(autouse=True, scope="module")
def _no_tracing() -> None:
    set_tracing_disabled(True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


# ------------------------------------------------------------------ openai client


async def test_non_stream_text_and_recording(fake: FakeLLM) -> None:
    fake.enqueue(text("Hello there."))
    client = fake.client()
    history: list[ChatCompletionMessageParam] = [
        {"role": "assistant", "content": "Earlier answer."},
        *USER,
    ]

    response = await client.chat.completions.create(model="gpt-x", messages=history)

    assert response.object == "chat.completion"
    assert response.choices[0].message.content == "Hello there."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.completion_tokens == 2
    assert response._request_id is not None
    assert fake.requests[0]["messages"] == history
    assert fake.model_counts == {"gpt-x": 1}
    assert fake.records[0].reply == "Text"


async def test_non_stream_tool_calls(fake: FakeLLM) -> None:
    fake.enqueue(tool_calls(("search_docs", {"query": "a"}), ("search_docs", {"query": "b"})))
    response = await fake.client().chat.completions.create(model="m", messages=USER)

    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [{"query": "a"}, {"query": "b"}]  # type: ignore[union-attr]
    assert len({c.id for c in calls}) == 2


async def test_stream_text_deltas_and_usage(fake: FakeLLM) -> None:
    fake.enqueue(text("One two three four."))
    stream = await fake.client().chat.completions.create(
        model="m",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(d or "" for d in deltas) == "One two three four."
    assert len([d for d in deltas if d]) == 4
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_option_sends_no_usage_chunk(fake: FakeLLM) -> None:
    stream = await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_stream_tool_call_deltas(fake: FakeLLM) -> None:
    fake.enqueue(tool_call("search_docs", {"query": "install the thing"}, call_id="call_1"))
    stream = await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]

    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id == "call_1"
    assert deltas[0].function is not None
    assert deltas[0].function.name == "search_docs"
    assert deltas[0].function.arguments == ""
    assert all(d.index == 0 and d.id is None for d in deltas[1:])
    assert len(deltas) > 2, "arguments should arrive in several fragments"
    arguments = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert json.loads(arguments) == {"query": "install the thing"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_rate_limit_is_rate_limit_error_and_retry_after_is_honoured(fake: FakeLLM) -> None:
    fake.enqueue(error(429, retry_after=0.01))
    with pytest.raises(openai.RateLimitError) as info:
        await fake.client().chat.completions.create(model="m", messages=USER)
    assert info.value.response.headers["retry-after"] == "0.01"
    assert info.value.code == "rate_limit_exceeded"

    fake.enqueue(error(429, retry_after=0.01), text("after retry"))
    started = time.monotonic()
    response = await fake.client(max_retries=2).chat.completions.create(model="m", messages=USER)
    assert response.choices[0].message.content == "after retry"
    assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 3


async def test_server_error_and_bad_request(fake: FakeLLM) -> None:
    fake.enqueue(error(500))
    with pytest.raises(openai.InternalServerError):
        await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/chat/completions", json={"model": "m"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_cut_stream_raises_and_clean_cut_does_not(fake: FakeLLM) -> None:
    fake.enqueue(cut_stream(after_chunks=2, reply=text("a b c d e f")))
    stream = await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    received: list[ChatCompletionChunk] = []

    async def consume() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(openai.APIConnectionError):
        await consume()
    assert len(received) == 2

    fake.enqueue(cut_stream(after_chunks=3, abort=False))
    stream = await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 3
    assert all(c.choices[0].finish_reason is None for c in chunks)


async def test_in_band_stream_error_and_malformed_body(fake: FakeLLM) -> None:
    fake.enqueue(stream_error(after_chunks=1, message="boom"))
    stream = await fake.client().chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        async for _ in stream:
            pass

    fake.enqueue(malformed())
    with pytest.raises(ValueError, match="Expecting"):
        await fake.client().chat.completions.create(model="m", messages=USER)


async def test_hang_until_the_client_times_out(fake: FakeLLM) -> None:
    fake.enqueue(hang())
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await fake.client(timeout=0.3).chat.completions.create(model="m", messages=USER)
    assert 0.25 < time.monotonic() - started < 1.5


def test_stop_releases_a_hung_request() -> None:
    """A hung request must not make teardown wait for uvicorn's graceful-shutdown timeout."""
    with FakeLLM() as server:
        server.script_for_model("m", hang())

        statuses: list[int] = []

        def call() -> None:
            response = httpx.post(
                f"{server.base_url}/chat/completions",
                timeout=5,
                json={"model": "m", "messages": USER},
            )
            statuses.append(response.status_code)

        thread = threading.Thread(target=call)
        thread.start()
        while not server.requests:
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert statuses == [503]


async def test_latency_knobs() -> None:
    async with FakeLLM(latency_first_token=0.2, tokens_per_s=100) as server:
        stream = await server.client().chat.completions.create(
            model="m",
            messages=USER,
            stream=True,
        )
        started = time.monotonic()
        first_token_at = None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first_token_at is None:
                first_token_at = time.monotonic() - started
        total = time.monotonic() - started
        assert first_token_at is not None
        assert 0.15 < first_token_at < 0.5
        # "This is a fake answer to: How do I install bookchat?" is 10 pieces: 9 gaps of 10 ms.
        assert total - first_token_at >= 0.08

        server.enqueue(text("quick", latency_first_token=0.0))
        started = time.monotonic()
        await server.client().chat.completions.create(model="m", messages=USER)
        assert time.monotonic() - started < 0.19


async def test_per_model_scripts_for_fallback(fake: FakeLLM) -> None:
    fake.script_for_model("primary", error(429, should_retry=False))
    fake.enqueue(text("from the fallback"))
    client = fake.client(max_retries=3)

    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="primary", messages=USER)
    response = await client.chat.completions.create(model="fallback", messages=USER)

    assert response.choices[0].message.content == "from the fallback"
    assert fake.model_counts == {"primary": 2, "fallback": 1}, "x-should-retry=false: no retries"
    assert fake.pending() == 0
    models = await client.models.list()
    assert {"fake-model", "primary", "fallback"} <= {m.id for m in models.data}

    fake.enqueue(text("only for primary"), model="primary")
    response = await client.chat.completions.create(model="primary", messages=USER)
    assert response.choices[0].message.content == "only for primary"


async def test_respond_hook_sees_the_request(fake: FakeLLM) -> None:
    def echo(request: dict[str, Any]) -> Reply | None:
        tools = [m for m in request["messages"] if m["role"] == "tool"]
        return text(f"You said {tools[-1]['content']} [1]") if tools else None

    fake.respond = echo
    messages: list[ChatCompletionMessageParam] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "forty-two"},
    ]
    response = await fake.client().chat.completions.create(model="m", messages=messages)
    assert response.choices[0].message.content == "You said forty-two [1]"
    response = await fake.client().chat.completions.create(model="m", messages=USER)
    assert (
        response.choices[0].message.content
        == "This is a fake answer to: How do I install bookchat?"
    )


async def test_api_key_is_checked_when_configured() -> None:
    async with FakeLLM(api_key="secret") as server:
        assert (await server.client().chat.completions.create(model="m", messages=USER)).id
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="nope", max_retries=0
        ) as wrong:
            with pytest.raises(openai.AuthenticationError):
                await wrong.chat.completions.create(model="m", messages=USER)


def test_default_reply_uses_the_current_turn_only() -> None:
    fake = FakeLLM()
    tools = [{"type": "function", "function": {"name": "search_docs", "parameters": {}}}]
    old_turn = [*USER, {"role": "tool", "tool_call_id": "c", "content": PASSAGES}]
    new_user = {"role": "user", "content": [{"type": "text", "text": "And uninstall?"}]}

    first = fake.default_reply({"messages": [*old_turn, new_user], "tools": tools})
    assert first == tool_call("search_docs", {"query": "And uninstall?"})
    answer = fake.default_reply({"messages": old_turn, "tools": tools})
    assert answer == text("Run pip install bookchat. [3]")
    fixed = FakeLLM(citation="[9]").default_reply({"messages": old_turn})
    assert fixed == text("Run pip install bookchat. [9]")
    bare = fake.default_reply({"messages": [*USER, {"role": "tool", "content": "Plain text."}]})
    assert bare == text("Plain text. [1]")


# ------------------------------------------------------------------ Agents SDK


def _agent(fake: FakeLLM, calls: list[str]) -> Agent[None]:
    @function_tool
    def search_docs(query: str) -> str:
        """Search the docs.

        Args:
            query: What to search for.
        """
        calls.append(query)
        return PASSAGES

    return Agent(
        name="t",
        instructions="Answer from the docs.",
        tools=[search_docs],
        model=fake.agents_model("agent-model"),
    )


async def test_agents_sdk_run_with_scripted_tool_call(fake: FakeLLM) -> None:
    calls: list[str] = []
    fake.enqueue(
        tool_call("search_docs", {"query": "scripted query"}), text("Scripted answer [3].")
    )

    result = await Runner.run(_agent(fake, calls), "How do I install?")

    assert calls == ["scripted query"]
    assert result.final_output == "Scripted answer [3]."
    first, second = fake.requests
    assert first["tools"][0]["function"]["name"] == "search_docs"
    assert not first.get("stream")
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"] == PASSAGES
    assert fake.model_counts == {"agent-model": 2}


async def test_agents_sdk_run_streamed_with_default_behaviour(fake: FakeLLM) -> None:
    calls: list[str] = []
    result = Runner.run_streamed(_agent(fake, calls), "How do I install bookchat?")
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
    ]

    assert calls == ["How do I install bookchat?"]
    assert result.final_output == "Run pip install bookchat. [3]"
    assert "".join(deltas) == result.final_output
    assert len(deltas) > 1
    assert all(r["stream"] is True for r in fake.requests)


async def test_agents_sdk_streamed_cut_stream_raises(fake: FakeLLM) -> None:
    fake.enqueue(cut_stream(after_chunks=2, reply=text("partial answer that is cut")))
    result = Runner.run_streamed(_agent(fake, []), "Hi")
    with pytest.raises(openai.APIConnectionError):
        async for _ in result.stream_events():
            pass


# ------------------------------------------------------------------ standalone


def test_standalone_server_for_benchmarks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_llm",
            "--port",
            str(port),
            "--tokens-per-s",
            "1000",
            "--model",
            "bench",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert [m["id"] for m in models["data"]] == ["bench"]
        body = {
            "model": "bench",
            "messages": USER,
            "tools": [{"type": "function", "function": {"name": "search_docs", "parameters": {}}}],
        }
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body).json()
        call = reply["choices"][0]["message"]["tool_calls"][0]
        assert json.loads(call["function"]["arguments"]) == {"query": USER[0]["content"]}
    finally:
        proc.terminate()
        proc.wait(5)
