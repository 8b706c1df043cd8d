"""The offline model's answer composer and its decline rule."""

from __future__ import annotations

import pytest

from shared.passages import Passage
from worker.extractive import compose_answer, decline_reason

pytestmark = pytest.mark.unit


def passage(text: str, heading: str = "Deploying", dense: float = 0.7) -> Passage:
    return Passage(
        chunk_id=heading,
        path="docs/deployment.md",
        url="https://docs.example.org/deployment#deploying",
        heading=heading,
        title="Deployment",
        score=1.0,
        dense_score=dense,
        text=text,
        breadcrumb=["Deployment", heading],
    )


DOCS = {
    1: passage(
        "Run `npm run build` to produce the static site in the build folder. "
        "Upload the build folder to any static host such as GitHub Pages or Netlify."
    ),
    2: passage("The baseUrl setting must end with a slash.", heading="Configuration"),
}


def test_answers_with_cited_sentences_from_the_passages() -> None:
    answer = compose_answer("How do I build the static site for deployment?", DOCS)
    assert answer is not None
    assert "npm run build" in answer
    assert "[1]" in answer


def test_declines_when_the_topic_is_absent() -> None:
    assert decline_reason("who won the 2022 world cup final?", DOCS) is not None
    assert compose_answer("who won the 2022 world cup final?", DOCS) is None


def test_declines_when_a_named_thing_is_never_mentioned() -> None:
    reason = decline_reason("How do I deploy the static site to WordPress hosting?", DOCS)
    assert reason is not None
    assert "WordPress" in reason


def test_a_typo_in_a_name_the_site_uses_is_not_a_decline() -> None:
    assert decline_reason("How do I deploy the static build to Netlfy?", DOCS) is None


def test_relevance_floor_applies_only_when_given() -> None:
    far = {1: passage(DOCS[1].text, dense=0.2)}
    question = "How do I build the static site?"
    assert decline_reason(question, far) is None
    assert decline_reason(question, far, min_cosine=0.36) is not None


def test_question_about_a_selection_takes_its_topic_from_the_selection() -> None:
    answer = compose_answer(
        "what does this mean?", DOCS, selection="The baseUrl setting must end with a slash."
    )
    assert answer is not None
    assert "[2]" in answer


def test_a_sentence_held_by_two_overlapping_passages_is_said_once() -> None:
    text = "Check the emergency stop button before anything else when the arm does not move."
    twice = {1: passage(text, heading="The arm does not move"), 2: passage(text, "Troubleshooting")}
    answer = compose_answer("What if the arm does not move?", twice)
    assert answer is not None
    assert answer.count("emergency stop") == 1
