"""The history repository (shared/history.py) over SQLite: one order for every reader, one
writer of sessions, idempotent recording."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from api.deps import AppState
from shared.history import Exchange, message_ids
from shared.models import FeedbackRating, MessageRole

pytestmark = pytest.mark.unit


def exchange(session_id: str, n: int) -> Exchange:
    return Exchange(
        job_id=str(uuid.uuid4()),
        session_id=session_id,
        site="default",
        question=f"question {n}",
        answer=f"answer {n} [1]",
        citations=[{"path": "a.md", "url": "/a", "heading": "A", "title": "A", "number": 1}],
        refused=False,
        model="m",
        selection="picked" if n == 0 else None,
    )


async def test_recorded_exchanges_read_back_oldest_first(state: AppState) -> None:
    history = state.history
    sid = str(uuid.uuid4())
    first, second = exchange(sid, 0), exchange(sid, 1)
    answer_id = await history.record(first)
    await history.record(second)
    assert answer_id == message_ids(first.job_id)[1]

    rows = await history.messages(uuid.UUID(sid))
    assert [(r.role, r.content) for r in rows] == [
        (MessageRole.USER, "question 0"),
        (MessageRole.ASSISTANT, "answer 0 [1]"),
        (MessageRole.USER, "question 1"),
        (MessageRole.ASSISTANT, "answer 1 [1]"),
    ]
    assert rows[0].selection == "picked"
    assert rows[1].citations == first.citations
    first_question = await history.first_question(uuid.UUID(sid))
    assert first_question is not None
    assert first_question.content == "question 0"
    assert await history.recent_turns(sid, turns=1) == [
        {"role": "user", "content": "question 1"},
        {"role": "assistant", "content": "answer 1 [1]"},
    ]
    assert await history.recent_turns(sid, turns=5, before_job=second.job_id) == [
        {"role": "user", "content": "question 0"},
        {"role": "assistant", "content": "answer 0 [1]"},
    ]
    assert await history.recent_turns(sid, turns=0) == []


async def test_recording_a_job_twice_writes_nothing_new(state: AppState) -> None:
    history = state.history
    sid = str(uuid.uuid4())
    again = exchange(sid, 0)
    assert await history.record(again) == await history.record(again)
    assert len(await history.messages(uuid.UUID(sid))) == 2
    session = await history.session(uuid.UUID(sid))
    assert session is not None
    assert session.site == "default"


async def test_a_session_made_before_its_first_answer_is_kept(state: AppState) -> None:
    history = state.history
    sid = uuid.uuid4()
    await history.ensure_session(sid, site="docs")
    await history.ensure_session(sid, site="docs")  # a second create is fine
    await history.record(exchange(str(sid), 0))
    session = await history.session(sid)
    assert session is not None
    assert session.site == "docs"


async def test_messages_are_found_only_in_their_own_session(state: AppState) -> None:
    history = state.history
    sid, other = str(uuid.uuid4()), uuid.uuid4()
    recorded = exchange(sid, 0)
    answer_id = await history.record(recorded)
    assert await history.message(answer_id, session_id=other) is None
    found = await history.message(answer_id, session_id=uuid.UUID(sid))
    assert found is not None
    by_job = await history.job_message(uuid.UUID(sid), uuid.UUID(recorded.job_id), MessageRole.USER)
    assert by_job is not None
    assert by_job.content == "question 0"

    [feedback] = await history.add_feedback([found], FeedbackRating.UP, "helpful")
    assert feedback.message_id == answer_id
    await history.delete_message(answer_id)
    assert await history.message(answer_id) is None
    await history.delete_session(uuid.UUID(sid))
    assert await history.messages(uuid.UUID(sid)) == []
    assert await history.session(uuid.UUID(sid)) is None


async def test_an_answer_keeps_the_commit_of_the_index_it_came_from(state: AppState) -> None:
    sid = str(uuid.uuid4())
    pinned = dataclasses.replace(exchange(sid, 0), index_commit="c0ffee" * 6 + "c0ff")
    await state.history.record(pinned)
    await state.history.record(exchange(sid, 1))  # a site read from a folder: no commit
    rows = await state.history.messages(uuid.UUID(sid))
    answers = [r.index_commit for r in rows if r.role == MessageRole.ASSISTANT]
    assert answers == [pinned.index_commit, None]
