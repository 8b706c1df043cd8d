"""How long the maintainer's report takes over a large history (issue 20).

Seeds a synthetic history of `--messages` rows (questions and answers, half each) spread over
90 days into a throwaway PostgreSQL database and an SQLite file (the same rows in both), then
times each part of the report, best of `--repeat`:

- `sql`: the usage and feedback sections (shared/report.py), for 7, 30 and 90 days;
- `gaps_cold`: selecting the declined / down-voted questions, embedding the ones not cached
  yet, grouping them and the rest of the report (first report after the history was written);
- `gaps_warm`: the same once every vector is cached (every later report);
- the same SQL without the migration's indexes (`0002_report`): the same-run baseline.

The embedder for the gap questions is `--embedder` (`hash`: isolates SQL and clustering from
the model's speed; `bundled`: the real first-report cost). Nearest pages need an index and are
left out (retriever None); they cost one batched Qdrant query per report.

    uv run python -m bench.report_speed --messages 100000 --out bench/results/report_speed.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ingestion_jobs.embedding import Embedder, HashEmbedder, MiniLMEmbedder
from shared.db import make_engine, make_sessionmaker
from shared.history import message_ids
from shared.migrate import upgrade_database
from shared.models import ChatSession, Feedback, Message, QuestionVector
from shared.report import feedback_section, usage_section
from shared.report_model import report_period
from shared.settings import Settings
from tests.conftest import throwaway_postgres
from worker.report_job import build_report

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PAGES = [f"docs/section-{i // 8}/page-{i}.md" for i in range(40)]
SUBJECTS = [
    "the enterprise plan price", "single sign-on with Okta", "running on Windows 98",
    "a Kubernetes operator", "the GraphQL API", "exporting to PDF", "dark mode for the admin",
    "rate limits on the free tier", "a Terraform provider", "GDPR data export",
    "the mobile app", "two-factor login", "migrating from version 1", "webhook retries",
    "an on-premise install", "the audit log", "custom domains", "the Python SDK",
    "billing in euros", "the offline mode",
]  # fmt: skip
FORMS = [
    "How do I use {}?", "Is there {}?", "What about {}?", "Does it support {}?",
    "Where is the page on {}?", "Can you explain {}?", "Any docs for {}?",
]  # fmt: skip


def _history(messages: int, seed: int = 7) -> tuple[list[dict[str, Any]], ...]:
    """Rows for the four tables: sessions, messages, feedback (dicts for a bulk insert)."""
    rng = random.Random(seed)
    sessions: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    session_id = uuid.uuid4()
    for n in range(messages // 2):
        if n % 3 == 0:
            session_id = uuid.uuid4()
            asked = NOW - timedelta(seconds=rng.uniform(0, 90 * 86400))
            sessions.append({"id": session_id, "created_at": asked, "site": "default"})
        asked = NOW - timedelta(seconds=rng.uniform(0, 90 * 86400))
        job_id = uuid.uuid4()
        user_id, answer_id = message_ids(str(job_id))
        declined = rng.random() < 0.15
        subject = rng.choice(SUBJECTS)
        question = rng.choice(FORMS).format(subject) + ("" if n % 5 else f" ({n % 97})")
        page = rng.choice(PAGES)
        citations = [
            {
                "path": p,
                "url": f"https://docs.example.com/{p[:-3]}#h{rng.randint(1, 4)}",
                "heading": f"Heading {rng.randint(1, 4)}",
                "title": p.rsplit("/", 1)[1],
                "number": i + 1,
            }
            for i, p in enumerate(rng.sample(PAGES, rng.randint(1, 3)))
        ]
        base = {"session_id": session_id, "job_id": job_id, "citations": [], "usage": None}
        rows.append(
            {
                **base,
                "id": user_id,
                "role": "user",
                "content": question,
                "refused": False,
                "selection": "Some highlighted text of the page." if rng.random() < 0.05 else None,
                "page_url": f"https://docs.example.com/{page[:-3]}" if rng.random() < 0.8 else None,
                "model": None,
                "answer_ms": None,
                "created_at": asked,
            }
        )
        rows.append(
            {
                **base,
                "id": answer_id,
                "role": "assistant",
                "content": "Declined." if declined else f"An answer about {subject}. " * 8,
                "citations": [] if declined else citations,
                "refused": declined,
                "selection": None,
                "page_url": None,
                "model": "bench",
                "answer_ms": int(rng.lognormvariate(7.5, 0.6)),
                "created_at": asked + timedelta(seconds=2),
            }
        )
        if not declined and rng.random() < 0.1:
            down = rng.random() < 0.3
            feedback.append(
                {
                    "id": uuid.uuid4(),
                    "message_id": answer_id,
                    "rating": "down" if down else "up",
                    "comment": "Not what I asked." if down else None,
                    "created_at": asked + timedelta(minutes=1),
                }
            )
    return sessions, rows, feedback


async def _seed(sm: async_sessionmaker[AsyncSession], messages: int) -> dict[str, int]:
    sessions, rows, feedback = _history(messages)
    async with sm() as db:
        connection = await db.connection()
        for model, values in ((ChatSession, sessions), (Message, rows), (Feedback, feedback)):
            table = model.__table__  # type: ignore[attr-defined]
            for start in range(0, len(values), 5000):
                await connection.execute(table.insert(), values[start : start + 5000])
        await db.commit()
    return {"sessions": len(sessions), "messages": len(rows), "feedback": len(feedback)}


async def _best(repeat: int, work: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return round(min(times), 4)


async def _measure(
    url: str, messages: int, repeat: int, embedder: Embedder, settings: Settings
) -> dict[str, Any]:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    result: dict[str, Any] = {"seeded": await _seed(sm, messages)}

    async def sql(days: int) -> None:
        period = report_period(timedelta(days=days), None, now=NOW)
        async with sm() as db:
            await usage_section(db, period)
            await feedback_section(db, period)

    async def whole(days: int) -> None:
        period = report_period(timedelta(days=days), None, now=NOW)
        await build_report(sm, period, settings=settings, embedder=embedder, retriever=None)

    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    for days in (7, 30, 90):
        result[f"sql_{days}d_s"] = await _best(repeat, lambda d=days: sql(d))  # type: ignore[misc]
    for days in (7, 30, 90):
        async with sm() as db:
            await (await db.connection()).execute(QuestionVector.__table__.delete())  # type: ignore[attr-defined]
            await db.commit()
        result[f"report_cold_{days}d_s"] = await _best(1, lambda d=days: whole(d))  # type: ignore[misc]
        result[f"report_warm_{days}d_s"] = await _best(repeat, lambda d=days: whole(d))  # type: ignore[misc]
    # The baseline: the same SQL without the report's indexes.
    async with engine.begin() as conn:
        for index in ("ix_message_created_at", "ix_feedback_created_at", "ix_chat_session_site"):
            await conn.execute(text(f"DROP INDEX {index}"))
        await conn.execute(text("ANALYZE"))
    for days in (7, 30, 90):
        result[f"sql_{days}d_no_indexes_s"] = await _best(repeat, lambda d=days: sql(d))  # type: ignore[misc]
    await engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--embedder", choices=("hash", "bundled"), default="hash")
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder: Embedder = HashEmbedder() if args.embedder == "hash" else MiniLMEmbedder()
    settings = Settings()
    out: dict[str, Any] = {
        "command": "uv run python -m bench.report_speed "
        f"--messages {args.messages} --embedder {args.embedder} --repeat {args.repeat}",
        "max_gap_questions": settings.report_max_gap_questions,
        "embedder": args.embedder,
    }
    if "postgres" in args.databases:
        with throwaway_postgres("bookchat_bench_report") as url:
            out["postgres"] = asyncio.run(
                _measure(url, args.messages, args.repeat, embedder, settings)
            )
        print(json.dumps(out["postgres"], indent=2))
    if "sqlite" in args.databases:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            upgrade_database(url)
            out["sqlite"] = asyncio.run(
                _measure(url, args.messages, args.repeat, embedder, settings)
            )
        print(json.dumps(out["sqlite"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
