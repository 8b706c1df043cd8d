"""Provider quirks are failures of the attempt, not answers (issue 14), through the fake
OpenAI-compatible server over HTTP: empty and whitespace-only completions, in-stream error
chunks (OpenAI's `data: {"error"}` event and OpenRouter's chunk with `finish_reason: "error"`),
streams that end without a finish_reason. Each is retried per BOOKCHAT_LLM_ATTEMPTS_PER_MODEL,
then the fallback model answers, then a stable error code. The internal NOT_COVERED sentinel
never reaches a token listener."""

from __future__ import annotations

import pytest

from shared.errors import BookchatError, ErrorCode
from shared.job_models import ChatRequest
from shared.settings import EmbedderKind, Settings
from tests.fake_llm import FakeLLM, Reply, cut_stream, stream_error, text, tool_call
from tests.unit.conftest import llm_settings
from worker.agent import NOT_COVERED
from worker.chat import Answer, SentinelFilter, answer_question
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

QUESTION = "How do I send the arm to its home pose?"
SEARCH = tool_call("search_docs", {"query": "home pose"})


class Followed:
    """What a reader following the stream saw: token deltas, and restarts."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.restarts = 0

    async def on_token(self, delta: str) -> None:
        self.tokens.append(delta)

    async def on_restart(self) -> None:
        self.restarts += 1
        self.tokens.clear()

    @property
    def text(self) -> str:
        return "".join(self.tokens)


async def ask(retriever: Retriever, settings: Settings, followed: Followed | None = None) -> Answer:
    followed = followed or Followed()
    return await answer_question(
        ChatRequest(message=QUESTION),
        settings=settings,
        retriever=retriever,
        on_token=followed.on_token,
        on_restart=followed.on_restart,
    )


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(text(""), id="empty-completion"),
        pytest.param(text(" \n\t "), id="whitespace-completion"),
        pytest.param(stream_error(after_chunks=2), id="in-stream-error-event"),
        pytest.param(stream_error(after_chunks=2, in_chunk=True), id="openrouter-error-chunk"),
        pytest.param(cut_stream(after_chunks=3, abort=False), id="ends-without-finish-reason"),
        pytest.param(cut_stream(after_chunks=3), id="connection-dropped"),
    ],
)
async def test_a_broken_attempt_is_retried_and_the_retry_answers(
    retriever: Retriever, broken: Reply
) -> None:
    followed = Followed()
    async with FakeLLM() as fake:
        # The first attempt searches, then its answer is broken; the second is the default
        # agent-like behaviour (search, then a cited answer).
        fake.enqueue(SEARCH, broken, model="primary")
        answer = await ask(retriever, llm_settings(fake), followed)
    assert not answer.refused, answer
    assert answer.citations
    assert answer.model == "primary"
    assert fake.model_counts["primary"] == 4
    assert followed.restarts == 1
    assert followed.text.strip()
    assert NOT_COVERED not in followed.text


async def test_a_model_that_keeps_answering_empty_falls_back_to_the_next(
    retriever: Retriever,
) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model("primary", _empty_after_search)
        settings = llm_settings(fake, llm_fallback_models=["backup"], llm_attempts_per_model=3)
        answer = await ask(retriever, settings)
    assert answer.model == "backup"
    assert not answer.refused
    assert fake.model_counts["primary"] == 2 * 3  # search + empty answer, three attempts


async def test_every_model_answering_empty_is_llm_unavailable_not_a_decline(
    retriever: Retriever,
) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model("primary", _empty_after_search)
        fake.script_for_model("backup", _empty_after_search)
        settings = llm_settings(fake, llm_fallback_models=["backup"])
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, settings)
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert "empty_completion" in caught.value.message
    assert fake.model_counts == {"primary": 4, "backup": 4}


async def test_every_model_erroring_in_stream_is_llm_unavailable(retriever: Retriever) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model("primary", stream_error(after_chunks=1, in_chunk=True))
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, llm_settings(fake, llm_attempts_per_model=3))
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert fake.model_counts["primary"] == 3


async def test_the_sentinel_is_never_streamed_by_an_llm(retriever: Retriever) -> None:
    followed = Followed()
    async with FakeLLM() as fake:
        fake.enqueue(SEARCH, text(NOT_COVERED))
        answer = await ask(retriever, llm_settings(fake), followed)
    assert answer.refused
    assert NOT_COVERED not in followed.text
    assert NOT_COVERED not in answer.answer


async def test_the_sentinel_is_never_streamed_by_the_offline_model(retriever: Retriever) -> None:
    followed = Followed()
    answer = await answer_question(
        ChatRequest(message="who won the 2022 fifa world cup final"),
        settings=Settings(embedder=EmbedderKind.HASH),
        retriever=retriever,
        on_token=followed.on_token,
    )
    assert answer.refused
    assert NOT_COVERED not in followed.text


async def test_sentinel_filter_holds_back_a_split_sentinel_and_passes_lookalikes() -> None:
    sent: list[str] = []

    async def send(delta: str) -> None:
        sent.append(delta)

    scrub = SentinelFilter(send)
    for delta in ["NOT_", "COV", "ERED"]:
        await scrub.add(delta)
    await scrub.flush()
    assert "".join(sent) == ""

    sent.clear()
    scrub = SentinelFilter(send)
    for delta in ["Use NOT", "_COVERAGE", " flags [1]", " NOT"]:
        await scrub.add(delta)
    await scrub.flush()
    assert "".join(sent) == "Use NOT_COVERAGE flags [1] NOT"


def _empty_after_search(body: dict[str, object]) -> Reply:
    """Search first; once the tool's output is in the conversation, answer nothing."""
    messages = body["messages"]
    assert isinstance(messages, list)
    if any(isinstance(m, dict) and m.get("role") == "tool" for m in messages):
        return text("")
    return SEARCH
