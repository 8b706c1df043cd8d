"""All the text a page shows, and follow-ups answered about the conversation's topic (issue 33,
items 3 and 4), on a small site of our own (tests/docusaurus/sites/acme-cli), through the real
ingest, retrieval and offline answerer with the bundled embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_jobs.embedding import get_embedder
from ingestion_jobs.indexer import index_site
from shared.job_models import ChatRequest
from shared.settings import EmbedderKind, Settings
from shared.vectorstore.edge import EdgeStore
from tests.language_sites import SITES_DIR
from worker.chat import Answer, answer_question
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

SETTINGS = Settings(embedder=EmbedderKind.BUNDLED)


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    store = EdgeStore(Path(tmp_path_factory.mktemp("edge")))
    embedder = get_embedder(SETTINGS)
    index_site(SITES_DIR / "acme-cli", store=store, embedder=embedder, collection="bookchat")
    yield Retriever(store, embedder, "bookchat")
    store.close()


async def ask(retriever: Retriever, question: str, after: str | None = None) -> Answer:
    """`question`, alone or as the follow-up of `after` (asked first, its answer in history)."""
    history: list[dict[str, str]] = []
    if after is not None:
        first = await answer_question(
            ChatRequest(message=after), settings=SETTINGS, retriever=retriever
        )
        history = [
            {"role": "user", "content": after},
            {"role": "assistant", "content": first.answer},
        ]
    return await answer_question(
        ChatRequest(message=question), settings=SETTINGS, retriever=retriever, history=history
    )


def headings(answer: Answer) -> list[str]:
    return [str(c["heading"]) for c in answer.citations]


async def test_text_given_to_a_component_as_props_is_answered(acme: Retriever) -> None:
    offline = await ask(acme, "How do I use acme without a network?")
    assert not offline.refused
    assert "ACME_OFFLINE=1" in offline.answer
    audit = await ask(acme, "Where is the audit log written?")
    assert "~/.acme/audit.log" in audit.answer


@pytest.mark.parametrize(("command", "example"), [("sub7", "50 orders"), ("sub3", "300 www")])
async def test_an_example_follow_up_is_answered_from_the_command_discussed(
    acme: Retriever, command: str, example: str
) -> None:
    answer = await ask(
        acme, "Show an example with flag3", after=f"What does acme {command} manage?"
    )
    assert headings(answer)[0] == f"acme {command}"
    assert f"acme {command} --flag3 {example}" in answer.answer


async def test_a_follow_up_is_answered_from_the_previous_answers_passage(acme: Retriever) -> None:
    answer = await ask(acme, "Is a bucket name needed too?", after="Where do uploaded files go?")
    assert not answer.refused
    assert headings(answer)[0] == "Uploads"
    assert "storage.bucket" in answer.answer


async def test_a_new_topic_in_a_conversation_stands_alone(acme: Retriever) -> None:
    """Even when it shares the site's main noun ("acme") with the previous answer."""
    for question in ("How do I delete a bucket?", "How do I delete a bucket with acme?"):
        answer = await ask(acme, question, after="What does acme sub7 manage?")
        assert headings(answer) == ["Delete a bucket"], question
