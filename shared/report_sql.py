"""The SQL the report's sections (shared/report.py) share: the two places PostgreSQL and SQLite
differ (a timestamp's UTC day, and unnesting a message's JSON citations), compiled per dialect
here, and the filters, joins and percentiles the sections are built from. All of it SQLAlchemy
Core over the tables of shared/models.py, the same statements on both databases.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, Table, and_, func, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import ChatSession, Feedback, Message, MessageRole
from shared.report_model import ReportPeriod

__all__ = [
    "FEEDBACK",
    "MESSAGE",
    "SESSION",
    "answer_ms_percentiles",
    "aware",
    "citation_rows",
    "during",
    "exchange_pair",
    "fetch_all",
    "fetch_count",
    "role_during",
    "site_filter",
    "utc_day",
]


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
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]
SESSION: Table = ChatSession.__table__  # type: ignore[attr-defined]


def citation_rows(db: AsyncSession, messages: Any) -> tuple[Any, dict[str, ColumnElement[Any]]]:
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


async def fetch_all(db: AsyncSession, statement: Executable) -> list[Any]:
    connection = await db.connection()
    return list((await connection.execute(statement)).all())


async def fetch_count(db: AsyncSession, statement: Executable) -> int:
    connection = await db.connection()
    return int((await connection.execute(statement)).scalar() or 0)


# --- Queries ----------------------------------------------------------------------------------


def during(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.since, column < period.until)


def site_filter(session_id: Any, period: ReportPeriod) -> ColumnElement[bool]:
    if period.site is None:
        return true()
    result: ColumnElement[bool] = session_id.in_(
        select(SESSION.c.id).where(SESSION.c.site == period.site)
    )
    return result


def role_during(messages: Any, role: MessageRole, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(
        messages.c.role == role,
        during(messages.c.created_at, period),
        site_filter(messages.c.session_id, period),
    )


def exchange_pair(
    row: Any, other: Any, other_role: MessageRole = MessageRole.ASSISTANT
) -> ColumnElement[bool]:
    """A message row and the other of its exchange (same chat job, `other_role`)."""
    return and_(other.c.job_id == row.c.job_id, other.c.role == other_role)


def _nearest_rank(q: float, count: int) -> int:
    """1-based nearest rank of the q-quantile among `count` sorted values: ceil(q * count)."""
    return max(1, min(count, -(-round(q * 100) * count // 100)))


async def answer_ms_percentiles(
    db: AsyncSession, where: ColumnElement[bool], count: int, quantiles: tuple[float, ...]
) -> list[int]:
    """Nearest-rank percentiles of `answer_ms` over the `count` rows `where` selects, in one
    sort: row_number() over the ordered values, keeping the wanted ranks (the same SQL on both
    databases; SQLite has no percentile_cont)."""
    m = MESSAGE
    ranks = [_nearest_rank(q, count) for q in quantiles]
    ranked = (
        select(m.c.answer_ms, func.row_number().over(order_by=m.c.answer_ms).label("rank"))
        .where(where, m.c.answer_ms.is_not(None))
        .subquery()
    )
    values = {
        int(rank): int(value)
        for value, rank in await fetch_all(
            db, select(ranked.c.answer_ms, ranked.c.rank).where(ranked.c.rank.in_(set(ranks)))
        )
    }
    return [values[rank] for rank in ranks]


def aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
