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

from ingestion_jobs.languages import detect_language
from worker.agent import NOT_COVERED, ChatContext
from worker.decline_rule import terms, topic_terms
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
        earlier, last_answer = _earlier_messages(items)
        whole = standalone_query(chat.question, earlier, last_answer)
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
        earlier, last_answer = _earlier_messages(items)
        conversation = follow_up_topic(self.context.question, earlier, last_answer)
        return [_message(self._answer(len(queries), conversation) or NOT_COVERED)]

    def _answer(self, searches: int, conversation: str | None = None) -> str | None:
        """The answer from the passages found: for a question of several parts, each part from
        the passages its own search found (else the whole question's), and for a part none of
        them covers, a plain sentence saying so, with no citation. None: no part is covered.
        ``conversation``: the previous question, which this one follows up (its topic picks
        the section, as it shaped the search)."""
        chat = self.context
        if searches == 1 or len(chat.found) < searches:
            return compose_answer(
                chat.question,
                chat.passages,
                selection=chat.selection,
                min_cosine=chat.min_cosine,
                conversation=conversation,
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
    r"|\b(it|its|it's|that|this|those|these|they|them|there|one|ones|same|above|undo|instead"
    r"|too|either|as well)\b",
    re.I,
)
_CITATION_MARK = re.compile(r"\[\d+\]")


def follow_up_topic(
    question: str, earlier: list[str], last_answer: str | None = None
) -> str | None:
    """The reader's previous question when ``question`` continues it, else None.

    A question continues the conversation when it is short (12 words at most) and either says
    so ("and how do I undo that?", "is a bucket name needed too?") or asks only about what the
    previous answer spoke of: every topic word of it is in that answer ("Show an example with
    flag3" after an answer that quoted ``--flag3``). Then it is about the previous question's
    topic, and search and the answer both read it with that question. A question with a topic
    word of its own is a new topic, even when it shares the site's main noun ("How do I stop
    the arm in an emergency?" after an answer about sending the arm home)."""
    if not earlier or len(question.split()) > 12:
        return None
    if _FOLLOW_UP.search(question):
        return earlier[-1]
    if last_answer:
        language = detect_language(question) or "en"
        said = terms(_CITATION_MARK.sub(" ", last_answer), language)
        if topic_terms(question, language) <= said:
            return earlier[-1]
    return None


def standalone_query(question: str, earlier: list[str], last_answer: str | None = None) -> str:
    """A search query that stands on its own: a follow-up (``follow_up_topic``) borrows the
    topic of the reader's previous question."""
    topic = follow_up_topic(question, earlier, last_answer)
    return f"{topic} {question}" if topic else question


def not_covered(part: str) -> str:
    """The sentence that stands for a part of a question the documentation does not answer."""
    return f'The documentation does not cover this part of the question: "{part.strip()}"'


def _searches_done(items: str | list[TResponseInputItem]) -> int:
    if isinstance(items, str):
        return 0
    return sum(
        1 for item in items if isinstance(item, dict) and item.get("type") == "function_call_output"
    )


def _earlier_messages(items: str | list[TResponseInputItem]) -> tuple[list[str], str | None]:
    """The reader's earlier questions of this conversation, and the last answer given."""
    if isinstance(items, str):
        return [], None
    texts: list[str] = []
    answer: str | None = None
    for item in items:
        fields = cast(dict[str, Any], item)
        content = fields.get("content")
        if fields.get("role") == "user" and isinstance(content, str):
            texts.append(content)
        elif fields.get("role") == "assistant" and isinstance(content, str):
            answer = content
    return texts[:-1], answer


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
