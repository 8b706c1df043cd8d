"""Model output as providers really send it (issue 26), through the fake OpenAI-compatible
server over HTTP and the real Agents SDK: each shape of the provider corpus
(tests/fake_llm.py, PROVIDER_SHAPES) is read as the answer it means, in the final answer and
in the streamed deltas; a completion cut off by the token limit is a failed attempt; a model
that keeps searching ends with an answer from what it found."""

from __future__ import annotations

import pytest

from shared.errors import BookchatError
from shared.job_models import ChatRequest
from shared.passages import Passage
from tests.fake_llm import PROVIDER_SHAPES, FakeLLM, ProviderShape, text, tool_call
from tests.unit.conftest import llm_settings
from tests.unit.test_provider_quirks import QUESTION, Followed
from worker.agent import extract_citations
from worker.chat import MAX_TURNS, TRUNCATED_NOTE, answer_question
from worker.model_output import AnswerStream, last_whole_sentences, read_answer
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

REASONING_WORDS = ("<think", "</think", "maybe irrelevant", "NOT_COVERED")


def first_url(retriever: Retriever) -> str:
    return retriever.search(QUESTION, limit=6)[0].url


@pytest.mark.parametrize("shape", PROVIDER_SHAPES, ids=lambda shape: shape.name)
async def test_each_provider_shape_is_read_as_the_answer_it_means(
    retriever: Retriever, shape: ProviderShape
) -> None:
    followed = Followed()
    async with FakeLLM(respond=shape.responder(first_url(retriever))) as fake:
        answer = await answer_question(
            ChatRequest(message=QUESTION),
            settings=llm_settings(fake),
            retriever=retriever,
            on_token=followed.on_token,
            on_restart=followed.on_restart,
        )
    assert not answer.refused, answer
    assert [c["number"] for c in answer.citations] == list(shape.cites), answer
    for word in REASONING_WORDS:
        assert word not in answer.answer, answer.answer
        assert word not in followed.text, followed.text
    assert followed.text.strip()


def passages(*urls: str) -> dict[int, Passage]:
    return {
        n: Passage(
            chunk_id=f"c{n}",
            path=f"docs/p{n}.md",
            url=url,
            heading="H",
            title="T",
            score=1.0,
            text="...",
        )
        for n, url in enumerate(urls, start=1)
    }


FOUND = passages(
    "https://docs.example.org/guide#setup",
    "https://docs.example.org/guide#run",
    "https://docs.example.org/faq",
)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Run it [1, 2].", "Run it [1][2]."),
        ("Run it [1-3].", "Run it [1][2][3]."),
        ("Run it [1-900].", "Run it [1-900]."),  # no range that wide: not a citation list
        ("Run it 【2】.", "Run it [2]."),
        ("Run it [^3].\n\n[^3]: faq", "Run it [3]."),
        ("Run it (1). Then (2).", "Run it [1]. Then [2]."),
        ("(1) install\n(2) run", "(1) install\n(2) run"),  # an enumeration, not citations
        ("Run it (1) as in [2].", "Run it (1) as in [2]."),  # brackets used: (1) is prose
        ("Run it (7).", "Run it (7)."),  # 7 was never retrieved
        ("See [the FAQ](https://docs.example.org/faq).", "See the FAQ [3]."),
        ("See [setup](/guide#setup).", "See setup [1]."),
        (
            "See [elsewhere](https://other.example/guide#setup).",
            "See [elsewhere](https://other.example/guide#setup).",
        ),
        ("Use `x = [1, 2]` [1, 2].", "Use `x = [1, 2]` [1][2]."),  # code quoted exactly
        ("<think>[2] looks off</think>\n\nRun it [1].", "Run it [1]."),
        ("<THINKING>hm</THINKING>Run it [1].", "Run it [1]."),
        ("I think [2]…</think>Run it [1].", "Run it [1]."),
        ("Run it [1]. <think>unfinished", "Run it [1]."),
    ],
)
def test_the_reader_normalizes_markers_and_drops_reasoning(written: str, read: str) -> None:
    assert read_answer(written, FOUND) == read


def test_a_thought_mentioning_a_passage_does_not_cite_it() -> None:
    _text, cited = extract_citations(
        read_answer("<think>[2] is about the proxy</think>Run it [1].", FOUND), FOUND
    )
    assert [c.number for c in cited] == [1]


@pytest.mark.parametrize(
    "pieces",
    [
        ["<think>", "[2] hm", "</think>", "Run it [1, 2]."],
        ["<", "think>[2] hm</", "think>Run", " it [1,", " 2]."],
        ["<th", "ink", ">[2] h", "m</thin", "k>\n\nRun it [1", ", 2", "]."],
    ],
)
async def test_the_stream_drops_reasoning_and_rewrites_markers_across_any_split(
    pieces: list[str],
) -> None:
    sent: list[str] = []

    async def send(delta: str) -> None:
        sent.append(delta)

    stream = AnswerStream(send)
    for piece in pieces:
        await stream.add(piece)
    await stream.flush()
    assert "".join(sent) == "Run it [1][2]."


async def test_a_stray_closing_tag_retracts_what_was_streamed() -> None:
    sent: list[str] = []
    retracted: list[int] = []

    async def send(delta: str) -> None:
        sent.append(delta)

    async def retract() -> None:
        retracted.append(len(sent))
        sent.clear()

    stream = AnswerStream(send, retract)
    for piece in ["Let me see, the user wants", " the pose.", "</think>", "Run it [1]."]:
        await stream.add(piece)
    await stream.flush()
    assert retracted
    assert "".join(sent) == "Run it [1]."


def test_a_cut_answer_keeps_its_whole_sentences() -> None:
    assert last_whole_sentences("Home the arm [1]. Before you start it, you must set") == (
        "Home the arm [1]."
    )
    assert last_whole_sentences("Home it [1]. Run this:\n```sh\nlumen home --") == "Home it [1]."
    assert last_whole_sentences("no sentence ends") == ""


async def test_an_answer_cut_by_the_token_limit_is_retried_with_room(
    retriever: Retriever,
) -> None:
    long = "The arm goes home with one command [1]. " * 12
    followed = Followed()
    async with FakeLLM() as fake:
        # The fake cuts at the request's max_tokens, as providers do.
        fake.script_for_model("primary", _after_search(text(long)))
        answer = await answer_question(
            ChatRequest(message=QUESTION),
            settings=llm_settings(fake, llm_max_tokens=16),
            retriever=retriever,
            on_token=followed.on_token,
            on_restart=followed.on_restart,
        )
        answers = [r for r in fake.requests if any(m.get("role") == "tool" for m in r["messages"])]
    assert not answer.truncated, answer
    assert answer.answer.count("[1]") == 12
    assert [r["max_tokens"] for r in answers] == [16, 1024]
    assert followed.restarts == 1


async def test_reasoning_that_uses_up_the_limit_is_retried_with_room(
    retriever: Retriever,
) -> None:
    thought = "<think>" + "Let me weigh each passage carefully. " * 10 + "</think>"
    async with FakeLLM() as fake:
        fake.script_for_model("primary", _after_search(text(f"{thought}Run it home [1].")))
        answer = await answer_question(
            ChatRequest(message=QUESTION),
            settings=llm_settings(fake, llm_max_tokens=16),
            retriever=retriever,
        )
    assert answer.answer == "Run it home [1]."
    assert not answer.truncated


async def test_an_answer_always_cut_off_is_served_trimmed_and_marked(
    retriever: Retriever,
) -> None:
    cut = "The arm goes home with one command [1]. Before you start it, you must set"
    followed = Followed()
    async with FakeLLM() as fake:
        fake.script_for_model("primary", _after_search(text(cut, finish_reason="length")))
        answer = await answer_question(
            ChatRequest(message=QUESTION),
            settings=llm_settings(fake),
            retriever=retriever,
            on_token=followed.on_token,
            on_restart=followed.on_restart,
        )
    assert answer.truncated
    assert not answer.refused
    assert answer.answer.startswith("The arm goes home with one command [1].")
    assert "you must set" not in answer.answer
    assert answer.answer.endswith(TRUNCATED_NOTE)
    assert answer.citations
    assert answer.result("s").truncated
    assert "you must set" not in followed.text


async def test_a_cut_off_answer_with_no_whole_sentence_is_no_answer(
    retriever: Retriever,
) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model(
            "primary", _after_search(text("Before you start it, you", finish_reason="length"))
        )
        with pytest.raises(BookchatError) as caught:
            await answer_question(
                ChatRequest(message=QUESTION), settings=llm_settings(fake), retriever=retriever
            )
    assert "length" in caught.value.message


async def test_a_model_that_keeps_searching_answers_from_what_it_found(
    retriever: Retriever,
) -> None:
    followed = Followed()
    async with FakeLLM() as fake:
        # Every turn calls search_docs again, unless told not to (tool_choice "none").
        fake.script_for_model("primary", tool_call("search_docs", {"query": "home pose"}))
        answer = await answer_question(
            ChatRequest(message=QUESTION),
            settings=llm_settings(fake),
            retriever=retriever,
            on_token=followed.on_token,
        )
    assert not answer.refused, answer
    assert answer.citations
    assert fake.model_counts["primary"] == MAX_TURNS + 1
    assert fake.last_request["tool_choice"] == "none"
    assert followed.text.strip()


def _after_search(reply: object) -> object:
    """A responder: search first, then `reply` once the passages are back."""

    def respond(body: dict[str, object]) -> object:
        messages = body.get("messages") or []
        assert isinstance(messages, list)
        if any(isinstance(m, dict) and m.get("role") == "tool" for m in messages):
            return reply
        return None

    return respond
