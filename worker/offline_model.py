"""The offline model: an Agents SDK `Model` that needs no network and no key.

It behaves like a disciplined tool-using LLM: on the first turn it calls `search_docs` with the
reader's question; once passages are back it composes an extractive answer from the sentences
that best match the question, citing each by its passage number, or answers `NOT_COVERED` when
nothing retrieved is relevant. It reads the run's `ChatContext` directly for the passages, so
nothing is parsed back out of the tool's text.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from agents import ModelResponse, ModelSettings, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model, ModelTracing
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
)

from worker.agent import NOT_COVERED, ChatContext
from worker.extractive import compose_answer

__all__ = ["OFFLINE_MODEL_NAME", "OfflineModel"]

OFFLINE_MODEL_NAME = "bookchat-offline-extractive"


class OfflineModel(Model):
    def __init__(self, context: ChatContext) -> None:
        self.context = context

    def _has_searched(self, items: str | list[TResponseInputItem]) -> bool:
        if isinstance(items, str):
            return False
        return any(
            isinstance(item, dict) and item.get("type") == "function_call_output" for item in items
        )

    def _output(self, items: str | list[TResponseInputItem]) -> list[ResponseOutputItem]:
        chat = self.context
        if not self._has_searched(items):
            query = standalone_query(chat.question, _earlier_user_messages(items))
            if chat.selection:
                query = f"{query}\n{chat.selection[:500]}"
            return [
                ResponseFunctionToolCall(
                    id=f"fc_{uuid.uuid4().hex}",
                    call_id=f"call_{uuid.uuid4().hex}",
                    name="search_docs",
                    arguments=_json({"query": query}),
                    type="function_call",
                    status="completed",
                )
            ]
        text = compose_answer(
            chat.question, chat.passages, selection=chat.selection, min_cosine=chat.min_cosine
        )
        return [_message(text or NOT_COVERED)]

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        return ModelResponse(output=self._output(input), usage=Usage(requests=1), response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        output = self._output(input)
        sequence = 0
        for item in output:
            if isinstance(item, ResponseOutputMessage):
                text = "".join(
                    part.text for part in item.content if isinstance(part, ResponseOutputText)
                )
                for index, piece in enumerate(_pieces(text)):
                    if index and self.context.stream_pace_s:
                        await asyncio.sleep(self.context.stream_pace_s)
                    yield ResponseTextDeltaEvent(
                        content_index=0,
                        delta=piece,
                        item_id=item.id,
                        logprobs=[],
                        output_index=0,
                        sequence_number=sequence,
                        type="response.output_text.delta",
                    )
                    sequence += 1
        yield ResponseCompletedEvent(
            response=Response(
                id=f"resp_{uuid.uuid4().hex}",
                created_at=time.time(),
                model=OFFLINE_MODEL_NAME,
                object="response",
                output=output,
                tool_choice="auto",
                tools=[],
                parallel_tool_calls=False,
            ),
            sequence_number=sequence,
            type="response.completed",
        )


_FOLLOW_UP = re.compile(
    r"^(and|but|also|so|then|what about|how about|why|ok|okay)\b"
    r"|\b(it|its|it's|that|this|those|these|they|them|there|one|ones|same|above|undo|instead)\b",
    re.I,
)


def standalone_query(question: str, earlier: list[str]) -> str:
    """A search query that stands on its own: a short follow-up ("and how do I undo that?")
    borrows the topic of the reader's previous question."""
    if not earlier:
        return question
    words = question.split()
    if len(words) <= 12 and _FOLLOW_UP.search(question):
        return f"{earlier[-1]} {question}"
    return question


def _earlier_user_messages(items: str | list[TResponseInputItem]) -> list[str]:
    if isinstance(items, str):
        return []
    texts: list[str] = []
    for item in items:
        fields = cast(dict[str, Any], item)
        if fields.get("role") == "user" and isinstance(fields.get("content"), str):
            texts.append(fields["content"])
    return texts[:-1]


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{uuid.uuid4().hex}",
        content=[ResponseOutputText(text=text, type="output_text", annotations=[], logprobs=[])],
        role="assistant",
        type="message",
        status="completed",
    )


def _pieces(text: str, size: int = 24) -> list[str]:
    """Split text into small deltas on word boundaries, as a streaming LLM would send it. The
    deltas join to exactly `text` (every space and newline kept where it was)."""
    pieces: list[str] = []
    current = ""
    for word in re.findall(r"\s+|\S+\s*", text):
        current += word
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _json(value: dict[str, str]) -> str:
    import orjson

    return orjson.dumps(value).decode()
