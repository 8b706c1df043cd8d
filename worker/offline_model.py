"""The offline model: an Agents SDK `Model` that needs no network and no key.

It behaves like a disciplined tool-using LLM: on the first turn it calls `search_docs` with the
reader's question, and for a question of several parts (worker/question_parts.py) once more per
part; once passages are back it composes an extractive answer from the sentences that best match
each part, citing each by its passage number, says plainly which part the passages do not
cover, or answers `NOT_COVERED` when nothing retrieved is relevant. It reads the run's
`ChatContext` directly for the passages (and which search found each), so nothing is parsed
back out of the tool's text.
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
from worker.question_parts import question_parts

__all__ = ["OFFLINE_MODEL_NAME", "OfflineModel", "not_covered", "standalone_query"]

OFFLINE_MODEL_NAME = "bookchat-offline-extractive"


class OfflineModel(Model):
    def __init__(self, context: ChatContext) -> None:
        self.context = context

    def _queries(self, items: str | list[TResponseInputItem]) -> list[str]:
        """What to search, in order: the whole question, then (a question of several parts,
        worker/question_parts.py) each part on its own."""
        chat = self.context
        earlier = _earlier_user_messages(items)
        whole = standalone_query(chat.question, earlier)
        if chat.selection:
            return [f"{whole}\n{chat.selection[:500]}"]
        parts = question_parts(chat.question)
        if len(parts) == 1:
            return [whole]
        return [whole, *(standalone_query(part, earlier) for part in parts)]

    def _output(self, items: str | list[TResponseInputItem]) -> list[ResponseOutputItem]:
        queries = self._queries(items)
        searched = _searches_done(items)
        if searched < len(queries):
            return [
                ResponseFunctionToolCall(
                    id=f"fc_{uuid.uuid4().hex}",
                    call_id=f"call_{uuid.uuid4().hex}",
                    name="search_docs",
                    arguments=_json({"query": queries[searched]}),
                    type="function_call",
                    status="completed",
                )
            ]
        return [_message(self._answer(len(queries)) or NOT_COVERED)]

    def _answer(self, searches: int) -> str | None:
        """The answer from the passages found: for a question of several parts, each part from
        the passages its own search found (else the whole question's), and for a part none of
        them covers, a plain sentence saying so, with no citation. None: no part is covered."""
        chat = self.context
        if searches == 1 or len(chat.found) < searches:
            return compose_answer(
                chat.question, chat.passages, selection=chat.selection, min_cosine=chat.min_cosine
            )
        found = [{n: chat.passages[n] for n in numbers} for numbers in chat.found]
        pieces: list[str] = []
        answered = False
        # A part is searched and read in its own words, even one that refers back ("what
        # sensors does that robot have?"): its own words are what find its page; the whole
        # question's passages are the fallback.
        for part, own in zip(question_parts(chat.question), found[1:], strict=True):
            text = compose_answer(part, own, min_cosine=chat.min_cosine) or compose_answer(
                part, found[0], min_cosine=chat.min_cosine
            )
            if text is None:
                pieces.append(not_covered(part))
            elif text not in pieces:  # two parts the same passage answers: said once
                pieces.append(text)
                answered = True
        return "\n\n".join(pieces) if answered else None

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


def not_covered(part: str) -> str:
    """The sentence that stands for a part of a question the documentation does not answer."""
    return f'The documentation does not cover this part of the question: "{part.strip()}"'


def _searches_done(items: str | list[TResponseInputItem]) -> int:
    if isinstance(items, str):
        return 0
    return sum(
        1 for item in items if isinstance(item, dict) and item.get("type") == "function_call_output"
    )


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
