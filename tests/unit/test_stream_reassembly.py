"""Streamed text reassembles to the final text: the link filter's streamed pieces join to
exactly `LinkPolicy.clean` of the whole answer (code spans and fences tracked across piece
boundaries), and the offline model's deltas join to exactly its final answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
)

from shared.link_policy import LinkPolicy
from worker import offline_model
from worker.agent import ChatContext
from worker.offline_model import _pieces

POLICY = LinkPolicy.for_site("https://lumen.example.org/lumen/manual/")

ANSWERS = [
    'Connect first:\n\n```python\nArm.connect("http://localhost:7020")\n```\n\nThen home it [1].',
    "Run `curl http://localhost:7020/status` and check the reply.",
    "See [the guide](https://lumen.example.org/lumen/manual/guide) and "
    "[the portal](https://evil.example/login), or www.evil.example now.",
    "arm.home(speed=0.2)  # 20%\n\nthen  wait  a second.\n",
    "Inline ``code with ` tick and http://a.example`` then http://b.example/x after.",
    "~~~\nhttp://inside.example/x\n~~~\nafter http://outside.example/y done",
    "Unclosed fence:\n```sh\ncurl http://localhost:7020\n",
    "A stray ` tick then http://evil.example/x and [a](/lumen/manual/a).",
    "Mail admin@evil.example or <https://evil.example/> or <https://lumen.example.org/lumen/manual/x>.",
    "List:\n  - `a`  and  `b`\n  - [c](HTTPS://evil.example)  end",
]


def streamed(text: str, size: int) -> str:
    stream = POLICY.stream()
    out = [stream.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + stream.flush()


@pytest.mark.parametrize("answer", ANSWERS)
def test_streamed_pieces_join_to_the_cleaned_whole_for_every_piece_size(answer: str) -> None:
    whole = POLICY.clean(answer)
    for size in range(1, 13):
        assert streamed(answer, size) == whole, size


def test_a_url_in_a_fenced_block_survives_streaming_as_it_does_cleaning() -> None:
    text = '```python\nArm.connect("http://localhost:7020")\n```\n'
    assert POLICY.clean(text) == text
    assert streamed(text, 7) == text


@pytest.mark.parametrize(
    "text",
    [
        "arm.home(speed=0.2)  # 20%",
        "one  two   three\n\nfour five six seven eight nine ten eleven twelve  thirteen",
        "  leading and trailing  ",
        "a" * 30 + "  " + "b" * 30 + "   c",
        "",
    ],
)
def test_offline_pieces_join_to_the_text(text: str) -> None:
    assert "".join(_pieces(text)) == text


def test_the_offline_models_streamed_deltas_join_to_its_final_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = "Call `arm.home(speed=0.2)  # 20%` first [1].  Then  wait a  little while [1]."
    monkeypatch.setattr(offline_model, "compose_answer", lambda *args, **kwargs: answer)
    model = offline_model.OfflineModel(ChatContext(retriever=None, question="q"))  # type: ignore[arg-type]
    searched: list[Any] = [{"type": "function_call_output", "call_id": "c", "output": "x"}]

    async def run() -> tuple[str, str]:
        deltas: list[str] = []
        final = ""
        events = model.stream_response(None, searched, None, [], None, [], None)  # type: ignore[arg-type]
        async for event in events:
            if isinstance(event, ResponseTextDeltaEvent):
                deltas.append(event.delta)
            elif isinstance(event, ResponseCompletedEvent):
                message = event.response.output[0]
                assert isinstance(message, ResponseOutputMessage)
                content = message.content[0]
                assert isinstance(content, ResponseOutputText)
                final = content.text
        return "".join(deltas), final

    joined, final = asyncio.run(run())
    assert final == answer
    assert joined == final
