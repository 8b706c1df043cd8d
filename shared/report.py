"""The maintainer's report: what readers asked, what the docs could not answer, what they thought
of the answers (issue 20). Read by `bookchat report`, GET /v1/admin/report and the /admin page.

Every figure is aggregated in the database (SQL through SQLAlchemy), the same statements on
PostgreSQL and SQLite: the two places they differ (a timestamp's UTC day, and unnesting a
message's JSON citations) are compiled per dialect in shared/report_sql.py, with the filters and
joins every section shares. This module holds each section's queries; Python only shapes the
rows. The report's shape (`Report` and its parts) is shared/report_model.py.

What a report never contains: session ids or tokens, client IPs (bookchat does not store them),
message or job ids. It shows question text unless the site turned storing it off
(BOOKCHAT_HISTORY_STORE_QUESTION_TEXT=false), in which case questions are "" and left out.

The knowledge-gaps section needs the embedder and the vector index, which live in the worker:
this module only selects the gap questions (`gap_questions`); worker/report_job.py groups them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import FeedbackRating, MessageRole
from shared.report_model import (
    CitedPage,
    CitedSection,
    DayCount,
    DownVote,
    FeedbackDay,
    FeedbackSection,
    GapQuestion,
    IndexCommit,
    PageQuestions,
    ReportPeriod,
    SelectionQuestion,
    UsageSection,
)
from shared.report_sql import (
    FEEDBACK,
    MESSAGE,
    answer_ms_percentiles,
    aware,
    citation_rows,
    during,
    exchange_pair,
    fetch_all,
    fetch_count,
    role_during,
    site_filter,
    utc_day,
)

__all__ = ["feedback_section", "gap_questions", "usage_section"]

#: How many rows the list parts of a report show (top pages, down-voted answers, ...).
TOP = 20
#: Longest selection / answer text a report repeats (characters); the rest is cut with "…".
EXCERPT_CHARS = 600


def _excerpt(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def usage_section(db: AsyncSession, period: ReportPeriod) -> UsageSection:
    """Questions, declines, time to answer, cited pages and sections, pages asked from."""
    m = MESSAGE
    in_period = and_(during(m.c.created_at, period), site_filter(m.c.session_id, period))
    assistant = and_(in_period, m.c.role == MessageRole.ASSISTANT)

    def where(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # One pass over the period: per UTC day, questions, answers, declines, timed answers and
    # questions about a selection; the totals are the sums of the days.
    day = utc_day(m.c.created_at)
    days = await fetch_all(
        db,
        select(
            day,
            where(m.c.role == MessageRole.USER),
            where(m.c.role == MessageRole.ASSISTANT),
            where(and_(m.c.role == MessageRole.ASSISTANT, m.c.refused)),
            where(m.c.answer_ms.is_not(None)),
            where(and_(m.c.role == MessageRole.USER, m.c.selection.is_not(None))),
            where(and_(m.c.role == MessageRole.ASSISTANT, m.c.truncated)),
        )
        .where(in_period)
        .group_by(day)
        .order_by(day),
    )
    questions, answers, declined, timed, selections, cut_off = (
        sum(int(row[i]) for row in days) for i in range(1, 7)
    )
    median, p95 = (
        await answer_ms_percentiles(db, assistant, timed, (0.50, 0.95)) if timed else (None, None)
    )

    # Citations: one pass unnesting the JSON arrays, grouped by section; pages are the sums of
    # their sections (a site has hundreds of sections, not millions).
    elements, cite = citation_rows(db, m)
    n = func.count().label("n")
    sections = await fetch_all(
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
    asked_from = await fetch_all(
        db,
        select(m.c.page_url, asked)
        .where(in_period, m.c.role == MessageRole.USER, m.c.page_url.is_not(None))
        .group_by(m.c.page_url)
        .order_by(asked.desc(), m.c.page_url)
        .limit(TOP),
    )
    declined_from = dict(
        await fetch_all(
            db,
            select(question.c.page_url, func.count())
            .select_from(answer.join(question, exchange_pair(answer, question, MessageRole.USER)))
            .where(
                role_during(answer, MessageRole.ASSISTANT, period),
                answer.c.refused,
                question.c.page_url.in_([url for url, _ in asked_from]),
            )
            .group_by(question.c.page_url),
        )
    )
    recent = await fetch_all(
        db,
        select(m.c.created_at, m.c.content, m.c.selection, m.c.page_url)
        .where(in_period, m.c.role == MessageRole.USER, m.c.selection.is_not(None))
        .order_by(m.c.created_at.desc())
        .limit(TOP // 2),
    )

    return UsageSection(
        questions=questions,
        answered=answers - declined - cut_off,
        declined=declined,
        cut_off=cut_off,
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
                asked_at=aware(asked_at),
                question=content,
                selection=_excerpt(selection),
                page_url=page_url,
            )
            for asked_at, content, selection, page_url in recent
        ],
        index_commits=[
            IndexCommit(
                commit=str(commit),
                answers=int(count),
                declined=int(refused),
                first_answer=aware(first),
                last_answer=aware(last),
            )
            for commit, count, refused, first, last in await fetch_all(
                db,
                select(
                    m.c.index_commit,
                    func.count(),
                    where(m.c.refused),
                    func.min(m.c.created_at),
                    func.max(m.c.created_at),
                )
                .where(assistant, m.c.index_commit.is_not(None))
                .group_by(m.c.index_commit)
                .order_by(func.max(m.c.created_at).desc())
                .limit(TOP),
            )
        ],
    )


async def feedback_section(db: AsyncSession, period: ReportPeriod) -> FeedbackSection:
    """Thumbs up/down per day and the down-voted answers with their question and comment."""
    f, answer, question = FEEDBACK, MESSAGE.alias("answer"), MESSAGE.alias("question")
    rated = and_(during(f.c.created_at, period), site_filter(answer.c.session_id, period))
    down = case((f.c.rating == FeedbackRating.DOWN, 1), else_=0)
    up = case((f.c.rating == FeedbackRating.UP, 1), else_=0)
    day = utc_day(f.c.created_at)
    per_day = [
        FeedbackDay(day=d, up=int(u), down=int(n))
        for d, u, n in await fetch_all(
            db,
            select(day, func.coalesce(func.sum(up), 0), func.coalesce(func.sum(down), 0))
            .select_from(f.join(answer, answer.c.id == f.c.message_id))
            .where(rated)
            .group_by(day)
            .order_by(day),
        )
    ]
    ups, downs = sum(d.up for d in per_day), sum(d.down for d in per_day)

    voted = await fetch_all(
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
                rated_at=aware(rated_at),
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


async def gap_questions(
    db: AsyncSession, period: ReportPeriod, *, limit: int
) -> tuple[int, list[GapQuestion]]:
    """How many questions of the period were declined or down-voted, and the `limit` most
    recent of them that have text (newest first). Selected on the answer rows (where the
    decline and the feedback are), so only the `limit` chosen ones join their question."""
    f, question, answer = FEEDBACK, MESSAGE.alias("question"), MESSAGE.alias("answer")
    down_voted = exists().where(f.c.message_id == answer.c.id, f.c.rating == FeedbackRating.DOWN)
    gap = and_(
        role_during(answer, MessageRole.ASSISTANT, period),
        or_(answer.c.refused, down_voted),
    )
    # Declined answers are counted on their own; down-votes (few) join their answer.
    total = await fetch_count(
        db,
        select(func.count()).where(
            role_during(MESSAGE, MessageRole.ASSISTANT, period), MESSAGE.c.refused
        ),
    ) + await fetch_count(
        db,
        select(func.count(func.distinct(answer.c.id)))
        .select_from(f.join(answer, answer.c.id == f.c.message_id))
        .where(
            role_during(answer, MessageRole.ASSISTANT, period),
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
    rows = await fetch_all(
        db,
        select(
            question.c.id,
            question.c.content,
            question.c.created_at,
            chosen.c.refused,
            chosen.c.down,
        )
        .select_from(chosen.join(question, exchange_pair(chosen, question, MessageRole.USER)))
        .where(question.c.content != "")
        .order_by(chosen.c.created_at.desc()),
    )
    return total, [
        GapQuestion(
            message_id=mid,
            text=text,
            asked_at=aware(asked),
            declined=bool(refused),
            down_voted=bool(down),
        )
        for mid, text, asked, refused, down in rows
    ]
