"""The maintainer's report: what readers asked, what the docs could not answer, what they thought
of the answers (issue 20). Read by `bookchat report`, GET /v1/admin/report and the /admin page.

Every figure is aggregated in the database (SQL through SQLAlchemy), the same statements on
PostgreSQL and SQLite: the two places they differ (a timestamp's UTC day, and unnesting a
message's JSON citations) are compiled per dialect below. Python only shapes the rows.

What a report never contains: session ids or tokens, client IPs (bookchat does not store them),
message or job ids. It shows question text unless the site turned storing it off
(BOOKCHAT_HISTORY_STORE_QUESTION_TEXT=false), in which case questions are "" and left out.

The knowledge-gaps section needs the embedder and the vector index, which live in the worker:
this module only selects the gap questions (`gap_questions`); worker/report_job.py groups them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Date, Table, and_, case, exists, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ChatSession, Feedback, FeedbackRating, Message, MessageRole

__all__ = [
    "CitedPage",
    "CitedSection",
    "DayCount",
    "DownVote",
    "FeedbackDay",
    "FeedbackSection",
    "GapQuestion",
    "GapTopic",
    "GapsSection",
    "NearestPage",
    "PageQuestions",
    "Report",
    "ReportPeriod",
    "SelectionQuestion",
    "UsageSection",
    "feedback_section",
    "gap_questions",
    "parse_since",
    "report_period",
    "usage_section",
]

#: How many rows the list parts of a report show (top pages, down-voted answers, ...).
TOP = 20
#: Longest selection / answer text a report repeats (characters); the rest is cut with "…".
EXCERPT_CHARS = 600

_SINCE = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_since(text: str) -> timedelta:
    """A look-back like `7d`, `24h`, `2w` (hours, days, weeks; at most 99,999 units).

    Raises ValueError with a message a person can act on for anything else."""
    match = _SINCE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--since {text!r}: use a positive number and h, d or w, e.g. 7d")
    return timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])


# --- The report's shape (one definition shared by the API, the worker and the CLI) ----------


class ReportPeriod(BaseModel):
    since: datetime
    until: datetime
    site: str | None = Field(default=None, description="Only sessions of this site; None = all")


class DayCount(BaseModel):
    day: date
    questions: int
    declined: int


class CitedPage(BaseModel):
    path: str = Field(description="Page source path relative to the site root")
    title: str
    url: str = Field(description="Page URL (no #anchor)")
    citations: int


class CitedSection(BaseModel):
    path: str
    title: str
    heading: str
    url: str = Field(description="Section URL with #anchor")
    citations: int


class PageQuestions(BaseModel):
    page_url: str = Field(description="The page the reader asked from (the widget's page_url)")
    questions: int
    declined: int


class SelectionQuestion(BaseModel):
    asked_at: datetime
    question: str
    selection: str
    page_url: str | None


class UsageSection(BaseModel):
    questions: int
    answered: int
    declined: int
    decline_rate: float | None = Field(description="declined / answered+declined; None = none")
    answer_ms_median: int | None = Field(description="Median time to answer (ms), queue included")
    answer_ms_p95: int | None = Field(description="95th percentile time to answer (ms)")
    per_day: list[DayCount] = Field(description="UTC days with at least one question")
    top_cited_pages: list[CitedPage]
    top_cited_sections: list[CitedSection]
    questions_by_page: list[PageQuestions]
    selection_questions: int = Field(description="Questions asked about highlighted text")
    recent_selection_questions: list[SelectionQuestion]


class FeedbackDay(BaseModel):
    day: date
    up: int
    down: int


class DownVote(BaseModel):
    rated_at: datetime
    comment: str | None
    question: str
    answer: str
    citations: list[dict[str, Any]]
    page_url: str | None


class FeedbackSection(BaseModel):
    up: int
    down: int
    down_rate: float | None = Field(description="down / (up + down); None = no feedback")
    per_day: list[FeedbackDay]
    down_voted: list[DownVote] = Field(description="Most recent first")


class NearestPage(BaseModel):
    path: str
    title: str
    heading: str
    url: str


class GapTopic(BaseModel):
    questions: int = Field(description="Questions in this topic")
    declined: int
    down_voted: int
    examples: list[str] = Field(description="Distinct questions, the most central first")
    nearest_pages: list[NearestPage] = Field(
        description="Pages the index ranks nearest the topic: what to extend, or what failed"
    )
    first_seen: datetime
    last_seen: datetime


class GapsSection(BaseModel):
    questions: int = Field(description="Declined or down-voted questions in the period")
    grouped: int = Field(description="How many of them (the most recent) were grouped")
    topics: list[GapTopic] = Field(description="Largest first")
    note: str | None = Field(default=None, description="Why topics are missing or partial")


class Report(BaseModel):
    generated_at: datetime
    period: ReportPeriod
    question_text_stored: bool
    usage: UsageSection
    feedback: FeedbackSection
    gaps: GapsSection


def report_period(since: timedelta, site: str | None, now: datetime | None = None) -> ReportPeriod:
    until = now or datetime.now(UTC)
    return ReportPeriod(since=until - since, until=until, site=site)


# --- Dialect-specific SQL, in one place ------------------------------------------------------


class utc_day(FunctionElement[date]):  # noqa: N801  (a SQL function, named like one)
    """The UTC calendar day of a timestamp column, as a DATE."""

    type = Date()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores the aware UTC timestamps as ISO text ("2026-11-29 10:00:00.123456").
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


# The tables as SQLAlchemy Core sees them: every query below is Core SQL over these.
_MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
_FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]
_SESSION: Table = ChatSession.__table__  # type: ignore[attr-defined]


def _citation_rows(db: AsyncSession, messages: Any) -> tuple[Any, dict[str, ColumnElement[Any]]]:
    """A FROM item unnesting each message's `citations` JSON array, and its fields."""
    if _dialect(db) == "postgresql":
        elements = func.json_array_elements(messages.c.citations).table_valued(
            "value", joins_implicitly=True
        )
        fields: dict[str, ColumnElement[Any]] = {
            key: elements.c.value.op("->>")(key) for key in ("path", "title", "url", "heading")
        }
    else:
        elements = func.json_each(messages.c.citations).table_valued("value", joins_implicitly=True)
        fields = {
            key: func.json_extract(elements.c.value, f"$.{key}")
            for key in ("path", "title", "url", "heading")
        }
    return elements, fields


def _dialect(db: AsyncSession) -> str:
    if db.bind is None:
        raise RuntimeError("the report needs a session bound to an engine")
    return db.bind.dialect.name


async def _rows(db: AsyncSession, statement: Executable) -> list[Any]:
    connection = await db.connection()
    return list((await connection.execute(statement)).all())


async def _count(db: AsyncSession, statement: Executable) -> int:
    connection = await db.connection()
    return int((await connection.execute(statement)).scalar() or 0)


# --- Queries ----------------------------------------------------------------------------------


def _in_period(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.since, column < period.until)


def _site_filter(session_id: Any, period: ReportPeriod) -> ColumnElement[bool]:
    if period.site is None:
        return true()
    result: ColumnElement[bool] = session_id.in_(
        select(_SESSION.c.id).where(_SESSION.c.site == period.site)
    )
    return result


def _excerpt(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _role_in_period(messages: Any, role: MessageRole, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(
        messages.c.role == role,
        _in_period(messages.c.created_at, period),
        _site_filter(messages.c.session_id, period),
    )


def _pair(
    row: Any, other: Any, other_role: MessageRole = MessageRole.ASSISTANT
) -> ColumnElement[bool]:
    """A message row and the other of its exchange (same chat job, `other_role`)."""
    return and_(other.c.job_id == row.c.job_id, other.c.role == other_role)


def _nearest_rank(q: float, count: int) -> int:
    """1-based nearest rank of the q-quantile among `count` sorted values: ceil(q * count)."""
    return max(1, min(count, -(-round(q * 100) * count // 100)))


async def _answer_ms_percentiles(
    db: AsyncSession, where: ColumnElement[bool], count: int, quantiles: tuple[float, ...]
) -> list[int]:
    """Nearest-rank percentiles of `answer_ms` over the `count` rows `where` selects, in one
    sort: row_number() over the ordered values, keeping the wanted ranks (the same SQL on both
    databases; SQLite has no percentile_cont)."""
    m = _MESSAGE
    ranks = [_nearest_rank(q, count) for q in quantiles]
    ranked = (
        select(m.c.answer_ms, func.row_number().over(order_by=m.c.answer_ms).label("rank"))
        .where(where, m.c.answer_ms.is_not(None))
        .subquery()
    )
    values = {
        int(rank): int(value)
        for value, rank in await _rows(
            db, select(ranked.c.answer_ms, ranked.c.rank).where(ranked.c.rank.in_(set(ranks)))
        )
    }
    return [values[rank] for rank in ranks]


async def usage_section(db: AsyncSession, period: ReportPeriod) -> UsageSection:
    """Questions, declines, time to answer, cited pages and sections, pages asked from."""
    m = _MESSAGE
    in_period = and_(_in_period(m.c.created_at, period), _site_filter(m.c.session_id, period))
    assistant = and_(in_period, m.c.role == MessageRole.ASSISTANT)

    def where(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # One pass over the period: per UTC day, questions, answers, declines, timed answers and
    # questions about a selection; the totals are the sums of the days.
    day = utc_day(m.c.created_at)
    days = await _rows(
        db,
        select(
            day,
            where(m.c.role == MessageRole.USER),
            where(m.c.role == MessageRole.ASSISTANT),
            where(and_(m.c.role == MessageRole.ASSISTANT, m.c.refused)),
            where(m.c.answer_ms.is_not(None)),
            where(and_(m.c.role == MessageRole.USER, m.c.selection.is_not(None))),
        )
        .where(in_period)
        .group_by(day)
        .order_by(day),
    )
    questions, answers, declined, timed, selections = (
        sum(int(row[i]) for row in days) for i in range(1, 6)
    )
    median, p95 = (
        await _answer_ms_percentiles(db, assistant, timed, (0.50, 0.95)) if timed else (None, None)
    )

    # Citations: one pass unnesting the JSON arrays, grouped by section; pages are the sums of
    # their sections (a site has hundreds of sections, not millions).
    elements, cite = _citation_rows(db, m)
    n = func.count().label("n")
    sections = await _rows(
        db,
        select(cite["path"], func.max(cite["title"]), func.max(cite["heading"]), cite["url"], n)
        .select_from(m)
        .join(elements, true())
        .where(assistant, m.c.refused.is_(False))
        .group_by(cite["path"], cite["url"]),
    )
    cited_sections = sorted(
        (
            CitedSection(
                path=str(path or ""),
                title=str(title or ""),
                heading=str(heading or ""),
                url=str(url or ""),
                citations=int(count),
            )
            for path, title, heading, url, count in sections
        ),
        key=lambda c: (-c.citations, c.url),
    )
    pages: dict[str, CitedPage] = {}
    for section in cited_sections:
        page = pages.setdefault(
            section.path,
            CitedPage(
                path=section.path,
                title=section.title,
                url=section.url.split("#", 1)[0],
                citations=0,
            ),
        )
        page.citations += section.citations

    # Questions per page they were asked from; a decline is on the answer row (same job), so
    # only the declined answers (a minority) join their question.
    question, answer = m.alias("question"), m.alias("answer")
    asked = func.count().label("asked")
    asked_from = await _rows(
        db,
        select(m.c.page_url, asked)
        .where(in_period, m.c.role == MessageRole.USER, m.c.page_url.is_not(None))
        .group_by(m.c.page_url)
        .order_by(asked.desc(), m.c.page_url)
        .limit(TOP),
    )
    declined_from = dict(
        await _rows(
            db,
            select(question.c.page_url, func.count())
            .select_from(answer.join(question, _pair(answer, question, MessageRole.USER)))
            .where(
                _role_in_period(answer, MessageRole.ASSISTANT, period),
                answer.c.refused,
                question.c.page_url.in_([url for url, _ in asked_from]),
            )
            .group_by(question.c.page_url),
        )
    )
    recent = await _rows(
        db,
        select(m.c.created_at, m.c.content, m.c.selection, m.c.page_url)
        .where(in_period, m.c.role == MessageRole.USER, m.c.selection.is_not(None))
        .order_by(m.c.created_at.desc())
        .limit(TOP // 2),
    )

    return UsageSection(
        questions=questions,
        answered=answers - declined,
        declined=declined,
        decline_rate=_rate(declined, answers),
        answer_ms_median=median,
        answer_ms_p95=p95,
        per_day=[
            DayCount(day=row[0], questions=int(row[1]), declined=int(row[3]))
            for row in days
            if int(row[1])
        ],
        top_cited_pages=sorted(pages.values(), key=lambda p: (-p.citations, p.path))[:TOP],
        top_cited_sections=cited_sections[:TOP],
        questions_by_page=[
            PageQuestions(
                page_url=str(url), questions=int(count), declined=int(declined_from.get(url, 0))
            )
            for url, count in asked_from
        ],
        selection_questions=selections,
        recent_selection_questions=[
            SelectionQuestion(
                asked_at=_aware(asked_at),
                question=content,
                selection=_excerpt(selection),
                page_url=page_url,
            )
            for asked_at, content, selection, page_url in recent
        ],
    )


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def feedback_section(db: AsyncSession, period: ReportPeriod) -> FeedbackSection:
    """Thumbs up/down per day and the down-voted answers with their question and comment."""
    f, answer, question = _FEEDBACK, _MESSAGE.alias("answer"), _MESSAGE.alias("question")
    rated = and_(_in_period(f.c.created_at, period), _site_filter(answer.c.session_id, period))
    down = case((f.c.rating == FeedbackRating.DOWN, 1), else_=0)
    up = case((f.c.rating == FeedbackRating.UP, 1), else_=0)
    day = utc_day(f.c.created_at)
    per_day = [
        FeedbackDay(day=d, up=int(u), down=int(n))
        for d, u, n in await _rows(
            db,
            select(day, func.coalesce(func.sum(up), 0), func.coalesce(func.sum(down), 0))
            .select_from(f.join(answer, answer.c.id == f.c.message_id))
            .where(rated)
            .group_by(day)
            .order_by(day),
        )
    ]
    ups, downs = sum(d.up for d in per_day), sum(d.down for d in per_day)

    voted = await _rows(
        db,
        select(
            f.c.created_at,
            f.c.comment,
            question.c.content,
            answer.c.content,
            answer.c.citations,
            question.c.page_url,
        )
        .select_from(
            f.join(answer, answer.c.id == f.c.message_id).outerjoin(
                question,
                and_(question.c.job_id == answer.c.job_id, question.c.role == MessageRole.USER),
            )
        )
        .where(rated, f.c.rating == FeedbackRating.DOWN)
        .order_by(f.c.created_at.desc())
        .limit(TOP),
    )
    return FeedbackSection(
        up=ups,
        down=downs,
        down_rate=_rate(downs, ups + downs),
        per_day=per_day,
        down_voted=[
            DownVote(
                rated_at=_aware(rated_at),
                comment=comment,
                question=asked or "",
                answer=_excerpt(answer_text),
                citations=[
                    {k: c.get(k) for k in ("path", "url", "heading", "title")}
                    for c in citations or []
                ],
                page_url=page_url,
            )
            for rated_at, comment, asked, answer_text, citations, page_url in voted
        ],
    )


class GapQuestion(BaseModel):
    """One question the docs did not serve: declined, or answered and down-voted."""

    message_id: uuid.UUID  # the question's row; internal (the vector cache key), never shown
    text: str
    asked_at: datetime
    declined: bool
    down_voted: bool


async def gap_questions(
    db: AsyncSession, period: ReportPeriod, *, limit: int
) -> tuple[int, list[GapQuestion]]:
    """How many questions of the period were declined or down-voted, and the `limit` most
    recent of them that have text (newest first). Selected on the answer rows (where the
    decline and the feedback are), so only the `limit` chosen ones join their question."""
    f, question, answer = _FEEDBACK, _MESSAGE.alias("question"), _MESSAGE.alias("answer")
    down_voted = exists().where(f.c.message_id == answer.c.id, f.c.rating == FeedbackRating.DOWN)
    gap = and_(
        _role_in_period(answer, MessageRole.ASSISTANT, period),
        or_(answer.c.refused, down_voted),
    )
    # Declined answers are counted on their own; down-votes (few) join their answer.
    total = await _count(
        db,
        select(func.count()).where(
            _role_in_period(_MESSAGE, MessageRole.ASSISTANT, period), _MESSAGE.c.refused
        ),
    ) + await _count(
        db,
        select(func.count(func.distinct(answer.c.id)))
        .select_from(f.join(answer, answer.c.id == f.c.message_id))
        .where(
            _role_in_period(answer, MessageRole.ASSISTANT, period),
            answer.c.refused.is_(False),
            f.c.rating == FeedbackRating.DOWN,
        ),
    )
    chosen = (
        select(answer.c.job_id, answer.c.refused, down_voted.label("down"), answer.c.created_at)
        .where(gap)
        .order_by(answer.c.created_at.desc())
        .limit(limit)
        .subquery()
    )
    rows = await _rows(
        db,
        select(
            question.c.id,
            question.c.content,
            question.c.created_at,
            chosen.c.refused,
            chosen.c.down,
        )
        .select_from(chosen.join(question, _pair(chosen, question, MessageRole.USER)))
        .where(question.c.content != "")
        .order_by(chosen.c.created_at.desc()),
    )
    return total, [
        GapQuestion(
            message_id=mid,
            text=text,
            asked_at=_aware(asked),
            declined=bool(refused),
            down_voted=bool(down),
        )
        for mid, text, asked, refused, down in rows
    ]
