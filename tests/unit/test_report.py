"""The maintainer's report on SQLite (the embedded default): each section's SQL over a small
history written with the real history writer, topic grouping, retention, and the CLI formats.
The same sections on PostgreSQL, seeded through the real chat path, are in
tests/integration/test_report.py."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import AppState, get_state
from api.main import create_app
from cli.report import ReportFormat, render
from ingestion_jobs.embedding import HashEmbedder, MiniLMEmbedder
from shared.db import make_engine, make_sessionmaker
from shared.history import Exchange, History, message_ids
from shared.migrate import upgrade_database
from shared.models import ChatSession, Feedback, Message, QuestionVector
from shared.report_model import Report, parse_since, report_period
from shared.retention import delete_history_before
from shared.settings import Settings
from worker.report_job import build_report, group_by_meaning

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def cite(page: str, heading: str) -> dict[str, Any]:
    return {
        "path": f"docs/{page}.md",
        "url": f"https://docs.example.com/docs/{page}#{heading.lower()}",
        "heading": heading,
        "title": page.title(),
        "number": 1,
    }


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    settings.data_dir.mkdir(parents=True)
    await asyncio.to_thread(upgrade_database, settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def ask(
    sm: async_sessionmaker[AsyncSession],
    question: str,
    *,
    at: datetime,
    refused: bool = False,
    citations: list[dict[str, Any]] | None = None,
    page_url: str | None = None,
    selection: str | None = None,
    answer_ms: int = 1000,
    site: str = "default",
    rating: str | None = None,
    comment: str | None = None,
    index_commit: str | None = None,
) -> uuid.UUID:
    """One exchange through the real writer, dated `at` (the clock is the fake here)."""
    job_id, session_id = str(uuid.uuid4()), uuid.uuid4()
    answer_id = await History(sm).record(
        Exchange(
            job_id=job_id,
            session_id=str(session_id),
            site=site,
            question=question,
            selection=selection,
            page_url=page_url,
            answer="I can't find that in the docs." if refused else f"Answer to {question}",
            citations=[] if refused else (citations or []),
            refused=refused,
            model="test",
            answer_ms=answer_ms,
            index_commit=index_commit,
        )
    )
    async with sm() as s:
        for message_id in message_ids(job_id):
            await s.exec(update(Message).where(Message.id == message_id).values(created_at=at))  # type: ignore[call-overload]
        await s.exec(update(ChatSession).where(ChatSession.id == session_id).values(created_at=at))  # type: ignore[call-overload]
        if rating:
            s.add(Feedback(message_id=answer_id, rating=rating, comment=comment, created_at=at))
        await s.commit()
    return answer_id


async def seed(sm: async_sessionmaker[AsyncSession]) -> None:
    day1, day2 = NOW - timedelta(days=2), NOW - timedelta(days=1)
    install = cite("installation", "Requirements")
    move = cite("first-move", "Home pose")
    for i, ms in enumerate((400, 800, 1200)):
        await ask(
            sm,
            f"How do I install it {i}?",
            at=day1,
            citations=[install, move],
            page_url="https://docs.example.com/docs/intro",
            answer_ms=ms,
            rating="up",
        )
    await ask(sm, "How do I home the arm?", at=day2, citations=[move], answer_ms=5000)
    await ask(
        sm,
        "What does the enterprise plan cost?",
        at=day2,
        refused=True,
        page_url="https://docs.example.com/docs/intro",
        answer_ms=900,
    )
    await ask(sm, "How much is the enterprise plan per year?", at=day2, refused=True)
    await ask(
        sm,
        "Why is the home pose wrong?",
        at=day2,
        citations=[move],
        selection="Send the arm to its home pose before a move.",
        page_url="https://docs.example.com/docs/first-move",
        rating="down",
        comment="This does not say which pose is home.",
    )
    # Outside the period, and another site: counted by neither default report.
    await ask(sm, "An old question?", at=NOW - timedelta(days=30), refused=True)
    await ask(sm, "Other site question?", at=day2, refused=True, site="other")


def settings_for(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


async def report(
    sm: async_sessionmaker[AsyncSession], settings: Settings, site: str | None = "default"
) -> Report:
    return await build_report(
        sm,
        report_period(timedelta(days=7), site, now=NOW),
        settings=settings,
        embedder=HashEmbedder(),
        retriever=None,
    )


async def test_usage_section(db: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    await seed(db)
    usage = (await report(db, settings)).usage
    assert usage.questions == 7
    assert (usage.answered, usage.declined) == (5, 2)
    assert usage.decline_rate == pytest.approx(2 / 7, abs=1e-4)
    # answer_ms over the period: 400 800 900 1000 1000 1200 5000 -> nearest rank
    assert usage.answer_ms_median == 1000
    assert usage.answer_ms_p95 == 5000
    assert [(d.day.isoformat(), d.questions, d.declined) for d in usage.per_day] == [
        ("2026-11-18", 3, 0),
        ("2026-11-19", 4, 2),
    ]
    assert [(p.path, p.citations) for p in usage.top_cited_pages] == [
        ("docs/first-move.md", 5),
        ("docs/installation.md", 3),
    ]
    assert usage.top_cited_pages[0].url == "https://docs.example.com/docs/first-move"
    assert usage.top_cited_sections[0].url.endswith("#home pose")
    assert usage.top_cited_sections[0].heading == "Home pose"
    assert [(p.page_url, p.questions, p.declined) for p in usage.questions_by_page] == [
        ("https://docs.example.com/docs/intro", 4, 1),
        ("https://docs.example.com/docs/first-move", 1, 0),
    ]
    assert usage.selection_questions == 1
    assert usage.recent_selection_questions[0].question == "Why is the home pose wrong?"
    assert usage.recent_selection_questions[0].selection.startswith("Send the arm")


async def test_answers_by_index_commit(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    old, new = "a" * 40, "b" * 40
    await ask(db, "Before the push?", at=NOW - timedelta(days=2), index_commit=old)
    await ask(db, "After the push?", at=NOW - timedelta(days=1), index_commit=new)
    await ask(db, "Declined after?", at=NOW - timedelta(hours=1), index_commit=new, refused=True)
    await ask(db, "From a folder?", at=NOW - timedelta(hours=1))
    built = await report(db, settings)
    got = [(c.commit, c.answers, c.declined) for c in built.usage.index_commits]
    assert got == [(new, 2, 1), (old, 1, 0)]
    assert "bbbbbbbbbbbb" in render(built, ReportFormat.MARKDOWN)


async def test_feedback_section(db: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    await seed(db)
    feedback = (await report(db, settings)).feedback
    assert (feedback.up, feedback.down) == (3, 1)
    assert feedback.down_rate == 0.25
    assert [(d.day.isoformat(), d.up, d.down) for d in feedback.per_day] == [
        ("2026-11-18", 3, 0),
        ("2026-11-19", 0, 1),
    ]
    (vote,) = feedback.down_voted
    assert vote.comment == "This does not say which pose is home."
    assert vote.question == "Why is the home pose wrong?"
    assert vote.answer == "Answer to Why is the home pose wrong?"
    assert [c["path"] for c in vote.citations] == ["docs/first-move.md"]
    assert vote.page_url == "https://docs.example.com/docs/first-move"


async def test_gaps_group_declined_and_down_voted_questions(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed(db)
    gaps = (await report(db, settings)).gaps
    assert gaps.questions == 3  # two declines and one down-vote in the period and site
    assert gaps.grouped == 3
    examples = [e for topic in gaps.topics for e in topic.examples]
    assert sorted(examples) == sorted(
        [
            "What does the enterprise plan cost?",
            "How much is the enterprise plan per year?",
            "Why is the home pose wrong?",
        ]
    )
    assert sum(t.declined for t in gaps.topics) == 2
    assert sum(t.down_voted for t in gaps.topics) == 1
    assert gaps.note is not None
    assert "index not opened" in gaps.note
    async with db() as s:
        cached = (await s.exec(select(QuestionVector))).all()
    assert len(cached) == 3  # embedded once, then read from the cache
    again = (await report(db, settings)).gaps
    assert again.topics == gaps.topics


async def test_site_filter_and_all_sites(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed(db)
    other = await report(db, settings, site="other")
    assert (other.usage.questions, other.usage.declined) == (1, 1)
    assert other.gaps.topics[0].examples == ["Other site question?"]
    everything = await report(db, settings, site=None)
    assert everything.usage.questions == 8


async def test_no_question_text_mode(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    job_id = str(uuid.uuid4())
    await History(db).record(
        Exchange(
            job_id=job_id,
            session_id=str(uuid.uuid4()),
            site="default",
            question="My secret question",
            page_url="https://docs.example.com/docs/intro",
            answer="I can't find that.",
            citations=[],
            refused=True,
        ),
        store_question_text=False,
    )
    async with db() as s:
        stored = await s.get(Message, message_ids(job_id)[0])
    assert stored is not None
    assert stored.content == ""
    quiet = settings_for(settings, history_store_question_text=False)
    result = await build_report(
        db,
        report_period(timedelta(days=1), None),
        settings=quiet,
        embedder=HashEmbedder(),
        retriever=None,
    )
    assert result.question_text_stored is False
    assert result.usage.declined == 1
    assert result.gaps.questions == 1
    assert result.gaps.topics == []
    assert result.gaps.note is not None
    assert "not stored" in result.gaps.note
    assert "My secret question" not in result.model_dump_json()


async def test_retention_deletes_old_history_only(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed(db)
    await report(db, settings, site=None)  # caches question vectors, deleted with their rows
    deleted = await delete_history_before(db, NOW - timedelta(days=7))
    assert (deleted.messages, deleted.sessions, deleted.feedback) == (2, 1, 0)
    deleted = await delete_history_before(db, NOW - timedelta(hours=36))
    assert (deleted.messages, deleted.feedback) == (6, 3)
    left = await report(db, settings, site=None)
    assert left.usage.questions == 5
    assert (left.feedback.up, left.feedback.down) == (0, 1)


def test_parse_since() -> None:
    assert parse_since("7d") == timedelta(days=7)
    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since(" 2w ") == timedelta(weeks=2)
    for bad in ("", "7", "0d", "-1d", "7y", "1.5d", "999999d"):
        with pytest.raises(ValueError, match="e.g. 7d"):
            parse_since(bad)


def test_group_by_meaning_puts_near_vectors_together() -> None:
    vectors = np.array(
        [[1, 0, 0], [0.95, 0.1, 0], [0, 1, 0], [0, 0.98, 0.1], [0, 0, 1]], dtype=np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert group_by_meaning(vectors) == [[0, 1], [2, 3], [4]]
    assert group_by_meaning(vectors[:1]) == [[0]]
    assert group_by_meaning(vectors[:0]) == []


@pytest.mark.slow
def test_bundled_embedder_groups_paraphrases_not_topics() -> None:
    """The cutoff (TOPIC_MAX_DISTANCE) against the bundled model: paraphrases share a topic,
    different subjects do not."""
    questions = [
        "What does the enterprise plan cost?",
        "How much is the enterprise plan per year?",
        "Enterprise pricing?",
        "Can I run the controller on Windows?",
        "Is there a Windows version of the software?",
        "Does the arm work underwater?",
    ]
    embedder = MiniLMEmbedder()
    vectors = np.array(embedder.embed_passages(questions), dtype=np.float32)
    groups = group_by_meaning(vectors)
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3, 4], [5]]


def test_report_json_round_trips(settings: Settings) -> None:
    now = datetime.now(UTC)
    empty: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "period": {"since": now.isoformat(), "until": now.isoformat(), "site": None},
        "question_text_stored": True,
        "usage": {
            "questions": 0,
            "answered": 0,
            "declined": 0,
            "decline_rate": None,
            "answer_ms_median": None,
            "answer_ms_p95": None,
            "per_day": [],
            "top_cited_pages": [],
            "top_cited_sections": [],
            "questions_by_page": [],
            "selection_questions": 0,
            "recent_selection_questions": [],
        },
        "feedback": {"up": 0, "down": 0, "down_rate": None, "per_day": [], "down_voted": []},
        "gaps": {"questions": 0, "grouped": 0, "topics": [], "note": None},
    }
    parsed = Report.model_validate(empty)
    assert json.loads(parsed.model_dump_json())["usage"]["questions"] == 0


@pytest.fixture
async def admin_client(settings: Settings, state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(settings, admin_token=SecretStr("unit-admin-token-0123456789"))
    state.settings = settings
    app = create_app(settings)
    app.dependency_overrides[get_state] = lambda: state
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_report_endpoint_needs_the_admin_token_and_a_valid_period(
    admin_client: httpx.AsyncClient,
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "unit-admin-token-0123456789"},
    ):
        response = await admin_client.get("/v1/admin/report", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    good = {"Authorization": "Bearer unit-admin-token-0123456789"}
    for params in ({"since": "7"}, {"since": "3y"}, {"since": ""}, {"site": ""}, {"site": "\x00"}):
        response = await admin_client.get("/v1/admin/report", params=params, headers=good)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["code"] == "validation_error"


async def test_admin_page_is_self_contained(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/admin")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'sha256-" in policy
    page = response.text
    # Nothing loaded from elsewhere: no external script, style, font or image.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page
    assert "innerHTML" not in page  # question text is reader input: DOM text nodes only
