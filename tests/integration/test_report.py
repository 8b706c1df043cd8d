"""The maintainer's report on PostgreSQL, over a history seeded through the real chat path (API
-> Redis -> Celery worker with the offline model -> Postgres), read back through the admin
endpoint (built by the worker) and the `bookchat report` CLI; retention through the real beat
task; and the no-question-text mode. Each test has a database of its own, so every count is
exact."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import text

from cli.main import main
from shared.db import make_engine
from shared.job_records import events_key, job_key
from shared.queues import TaskName, make_sender
from shared.settings import get_settings
from tests.conftest import throwaway_postgres
from tests.stack import Stack, stored_messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "report-admin-token-0123456789"
SITE = "https://lumen.example.org/lumen/manual"
INTRO, FIRST_MOVE, SAFETY = (
    f"{SITE}/",
    f"{SITE}/getting-started/first-move",
    f"{SITE}/guides/safety",
)
ANSWERABLE = [
    ("How do I send the arm to its home pose?", FIRST_MOVE),
    ("How do I install the Lumen packages on Debian?", INTRO),
    ("What are soft limits and collision detection?", SAFETY),
    ("How do I send the arm home after power on?", FIRST_MOVE),
]
DECLINED = [
    ("What does the enterprise plan cost per seat?", INTRO),
    ("How much does the enterprise plan cost per seat per year?", INTRO),
    ("Can the gripper hold a glass of water underwater?", SAFETY),
]
SELECTION = "Send the arm to its home pose before any other move."


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own (the session's shared one holds other tests' history)."""
    with throwaway_postgres("bookchat_report") as url:
        yield url


def ask(stack: Stack, question: str, **body: Any) -> dict[str, Any]:
    accepted = stack.chat(question, **body)
    job = stack.wait(accepted["status_url"])
    assert job["status"] == "succeeded", (job, stack.log())
    return {**accepted, **job["result"]}


def rate(stack: Stack, asked: dict[str, Any], rating: str, comment: str | None = None) -> None:
    response = stack.http.post(
        f"/v1/messages/{asked['message_id']}/feedback",
        json={"rating": rating, "comment": comment},
        headers={"X-Session-Token": asked["session_token"]},
    )
    assert response.status_code == 201, response.text


def admin_report(stack: Stack, **params: str) -> dict[str, Any]:
    response = stack.http.get(
        "/v1/admin/report", params=params, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, (response.text, stack.log())
    report: dict[str, Any] = response.json()
    return report


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_report(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> CliResult:
    """`bookchat report ARGS` through the CLI's entry point, in this process, configured as
    the stack's worker is."""
    for name in [n for n in os.environ if n.startswith("BOOKCHAT_")]:
        monkeypatch.delenv(name)
    for name, value in {**stack.env, "COLUMNS": "200"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit) as exited:
            main(["report", *args])
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr()
    return CliResult(int(exited.value.code or 0), out.out, out.err)


def seed(stack: Stack) -> dict[str, dict[str, Any]]:
    asked: dict[str, dict[str, Any]] = {}
    for question, page in ANSWERABLE + DECLINED:
        asked[question] = ask(stack, question, page_url=page)
    asked["selection"] = ask(
        stack, "What does this mean?", selection=SELECTION, page_url=FIRST_MOVE
    )
    rate(stack, asked[ANSWERABLE[0][0]], "down", "It never says which pose counts as home.")
    rate(stack, asked[ANSWERABLE[1][0]], "down", "Nothing about Windows.")
    rate(stack, asked[ANSWERABLE[2][0]], "up")
    return asked


def test_report_sections_endpoint_auth_cli_formats_and_retention(
    make_stack: Callable[..., Stack],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
) -> None:
    monkeypatch.setenv("BOOKCHAT_ADMIN_TOKEN", TOKEN)  # the API (in this process) reads it
    stack = make_stack(BOOKCHAT_ADMIN_TOKEN=TOKEN, BOOKCHAT_HISTORY_RETENTION_DAYS="30")
    asked = seed(stack)
    assert [asked[q]["refused"] for q, _ in ANSWERABLE] == [False] * len(ANSWERABLE)
    assert [asked[q]["refused"] for q, _ in DECLINED] == [True] * len(DECLINED)

    # The endpoint's auth: nothing without the admin token; bad input is a 422, not a 500.
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = stack.http.get("/v1/admin/report", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "unauthorized"
    for since in ("7", "0d", "1y", "x" * 13):
        bad = stack.http.get(
            "/v1/admin/report",
            params={"since": since},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["code"] == "validation_error"

    report = admin_report(stack, since="1d")
    raw = json.dumps(report)
    for secret in ("session_token", "session_id", "127.0.0.1", asked["selection"]["session_id"]):
        assert secret not in raw

    usage = report["usage"]
    total = len(ANSWERABLE) + len(DECLINED) + 1
    assert usage["questions"] == total
    assert usage["declined"] == len(DECLINED)
    assert usage["answered"] == total - len(DECLINED)
    assert usage["decline_rate"] == round(len(DECLINED) / total, 4)
    assert 0 < usage["answer_ms_median"] <= usage["answer_ms_p95"] < 60_000
    today = datetime.now(UTC).date().isoformat()
    assert usage["per_day"] == [{"day": today, "questions": total, "declined": len(DECLINED)}]
    pages = {p["path"]: p["citations"] for p in usage["top_cited_pages"]}
    assert pages["docs/01-getting-started/02-first-move.md"] >= 2
    assert usage["top_cited_pages"][0]["path"] == "docs/01-getting-started/02-first-move.md"
    assert all("#" not in p["url"] for p in usage["top_cited_pages"])
    # A section is a page's heading (URL with #anchor), or its text before the first heading.
    assert any("#" in s["url"] for s in usage["top_cited_sections"])
    assert sum(s["citations"] for s in usage["top_cited_sections"]) == sum(pages.values())
    by_page = {p["page_url"]: (p["questions"], p["declined"]) for p in usage["questions_by_page"]}
    assert by_page == {INTRO: (3, 2), FIRST_MOVE: (3, 0), SAFETY: (2, 1)}
    assert usage["selection_questions"] == 1
    (selected,) = usage["recent_selection_questions"]
    assert (selected["question"], selected["selection"]) == ("What does this mean?", SELECTION)

    feedback = report["feedback"]
    assert (feedback["up"], feedback["down"], feedback["down_rate"]) == (1, 2, round(2 / 3, 4))
    assert feedback["per_day"] == [{"day": today, "up": 1, "down": 2}]
    votes = {v["comment"]: v for v in feedback["down_voted"]}
    home = votes["It never says which pose counts as home."]
    assert home["question"] == ANSWERABLE[0][0]
    assert home["answer"] == asked[ANSWERABLE[0][0]]["answer"]
    assert [c["url"] for c in home["citations"]] == [
        c["url"] for c in asked[ANSWERABLE[0][0]]["citations"]
    ]
    assert home["page_url"] == FIRST_MOVE
    assert votes["Nothing about Windows."]["question"] == ANSWERABLE[1][0]

    gaps = report["gaps"]
    assert gaps["questions"] == len(DECLINED) + 2  # declined + down-voted
    assert gaps["note"] is None
    topics = {frozenset(t["examples"]): t for t in gaps["topics"]}
    plan = topics[frozenset(q for q, _ in DECLINED[:2])]  # the two pricing questions together
    assert (plan["questions"], plan["declined"], plan["down_voted"]) == (2, 2, 0)
    assert plan["first_seen"] <= plan["last_seen"]
    assert all(t["nearest_pages"] for t in gaps["topics"])
    assert all(p["url"].startswith(SITE) for t in gaps["topics"] for p in t["nearest_pages"])
    assert sum(t["down_voted"] for t in gaps["topics"]) == 2

    # An empty period, and a site with no sessions, are reports too.
    assert admin_report(stack, since="1d", site="elsewhere")["usage"]["questions"] == 0

    # The CLI, over the same database (the index is held by the worker: no nearest pages).
    as_json = cli_report(stack, monkeypatch, capsys, "--since", "1d", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    cli = json.loads(as_json.stdout)
    assert cli["usage"] == usage
    assert cli["feedback"] == feedback
    assert sorted(t["questions"] for t in cli["gaps"]["topics"]) == sorted(
        t["questions"] for t in gaps["topics"]
    )
    as_csv = cli_report(stack, monkeypatch, capsys, "--since", "1d", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {"section", "row", "column", "value"} == set(rows[0])
    cell = {(r["section"], r["column"]): r["value"] for r in rows if r["row"] == "1"}
    assert cell[("Summary", "value")] == str(total)
    assert ("Down-voted answers", "comment") in cell
    as_md = cli_report(stack, monkeypatch, capsys, "--since", "1d", "--format", "markdown")
    assert as_md.returncode == 0, as_md.stderr
    assert "## Knowledge gaps" in as_md.stdout
    assert "| It never says which pose counts as home. |" in as_md.stdout
    as_table = cli_report(stack, monkeypatch, capsys, "--since", "1d")
    assert as_table.returncode == 0, as_table.stderr
    assert "Down-voted answers" in as_table.stdout
    assert "Nothing about Windows." in as_table.stdout
    bad = cli_report(stack, monkeypatch, capsys, "--since", "soon")
    assert bad.returncode == 2
    assert "e.g. 7d" in bad.stderr

    check_retention(stack, asked, redis_url)


def test_no_question_text_mode(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOKCHAT_ADMIN_TOKEN", TOKEN)
    # The API's settings too: it stores the question as it is queued.
    monkeypatch.setenv("BOOKCHAT_HISTORY_STORE_QUESTION_TEXT", "false")
    stack = make_stack(BOOKCHAT_ADMIN_TOKEN=TOKEN, BOOKCHAT_HISTORY_STORE_QUESTION_TEXT="false")
    answered = ask(stack, ANSWERABLE[0][0], page_url=FIRST_MOVE)
    declined = ask(stack, DECLINED[0][0], page_url=INTRO)
    rate(stack, answered, "down", "Too short.")
    rows = stored_messages(stack, answered["session_id"])
    assert [(r.role, r.content) for r in rows] == [
        ("user", ""),
        ("assistant", answered["answer"]),
    ]
    assert rows[0].page_url == FIRST_MOVE

    report = admin_report(stack, since="1d")
    assert report["question_text_stored"] is False
    assert (report["usage"]["questions"], report["usage"]["declined"]) == (2, 1)
    (vote,) = report["feedback"]["down_voted"]
    assert (vote["comment"], vote["question"]) == ("Too short.", "")
    assert report["gaps"]["questions"] == 2
    assert report["gaps"]["topics"] == []
    assert "not stored" in report["gaps"]["note"]
    raw = json.dumps(report)
    assert ANSWERABLE[0][0] not in raw
    assert DECLINED[0][0] not in raw
    # Nor in Redis once the jobs ended (issue 30): the job hashes and their event streams.
    client = redis.Redis.from_url(stack.settings.redis_url)
    questions = (ANSWERABLE[0][0].encode(), DECLINED[0][0].encode())
    for asked_ in (answered, declined):
        stored: list[bytes] = list(client.hgetall(job_key(asked_["job_id"])).values())
        for _id, entry in client.xrange(events_key(asked_["job_id"])):
            stored += entry.values()
        assert stored
        assert not [v for v in stored if any(q in v for q in questions)]
    assert declined["refused"] is True


def check_retention(stack: Stack, asked: dict[str, dict[str, Any]], redis_url: str) -> None:
    """The beat's retention task, run by the worker (BOOKCHAT_HISTORY_RETENTION_DAYS=30), after
    the first question's conversation is made 40 days old; the report before has cached the
    gap questions' vectors, which must go with their rows."""
    old, kept = asked[ANSWERABLE[0][0]], asked[DECLINED[0][0]]

    # The clock is the edge we fake: the first conversation happened 40 days ago.
    async def backdate() -> None:
        engine = make_engine(stack.settings.effective_database_url)
        ago = datetime.now(UTC) - timedelta(days=40)
        sid = uuid.UUID(old["session_id"])
        async with engine.begin() as conn:
            for table in ("message", "chat_session"):
                key = "session_id" if table == "message" else "id"
                await conn.execute(
                    text(f"UPDATE {table} SET created_at = :ago WHERE {key} = :sid"),
                    {"ago": ago, "sid": sid},
                )
            await conn.execute(
                text("UPDATE feedback SET created_at = :ago WHERE message_id = :mid"),
                {"ago": ago, "mid": uuid.UUID(old["message_id"])},
            )
        await engine.dispose()

    asyncio.run(backdate())
    total = len(ANSWERABLE) + len(DECLINED) + 1
    before = admin_report(stack, since="52w")
    assert before["usage"]["questions"] == total
    assert len(before["usage"]["per_day"]) == 2
    assert admin_report(stack, since="1d")["usage"]["questions"] == total - 1

    sender = make_sender(redis_url)
    sender.send_task(str(TaskName.HISTORY_RETENTION))
    deadline = time.monotonic() + 60
    while stored_messages(stack, old["session_id"]):
        assert time.monotonic() < deadline, stack.log()
        time.sleep(0.5)
    assert len(stored_messages(stack, kept["session_id"])) == 2

    after = admin_report(stack, since="52w")
    assert after["usage"]["questions"] == total - 1
    assert (after["feedback"]["up"], after["feedback"]["down"]) == (1, 1)
    assert after["gaps"]["questions"] == len(DECLINED) + 1
    assert ANSWERABLE[0][0] not in json.dumps(after)

    async def leftovers() -> tuple[int, int, int]:
        engine = make_engine(stack.settings.effective_database_url)
        async with engine.connect() as conn:
            counts = [
                int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar() or 0)
                for t in ("chat_session", "feedback", "question_vector")
            ]
        await engine.dispose()
        return counts[0], counts[1], counts[2]

    # Sessions, feedback and cached vectors of the old conversation went with it.
    assert asyncio.run(leftovers()) == (total - 1, 2, len(DECLINED) + 1)
