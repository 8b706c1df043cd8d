"""`bookchat report`: the maintainer's report in a terminal (rich tables), Markdown, CSV or JSON.

The report is built in this process (worker/report_job.py: SQL sections plus the topic grouping
of declined questions); only the vector index may be unavailable here (the embedded store is
held by a running `bookchat dev`), in which case topics come without their nearest pages.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.report_model import Report, report_period
from shared.settings import Settings

__all__ = ["ReportFormat", "build_local_report", "render"]

log = logging.getLogger(__name__)


class ReportFormat(StrEnum):
    TABLE = "table"
    MARKDOWN = "markdown"
    CSV = "csv"
    JSON = "json"


def build_local_report(settings: Settings, since: timedelta, site: str | None) -> Report:
    """Build the report here, over the configured database and index."""
    from ingestion_jobs.embedding import embedder_for_index, get_embedder
    from shared.db import make_engine, make_sessionmaker
    from shared.errors import BookchatError
    from shared.vectorstore import is_store_error, open_store
    from worker.report_job import build_report
    from worker.retrieval import Retriever

    embedder = get_embedder(settings)
    try:
        retriever: Retriever | None = Retriever(
            open_store(settings),
            embedder,
            settings.collection,
            follow_index=lambda stored: embedder_for_index(settings, stored),
        )
    except Exception as error:  # e.g. the local store is open in `bookchat dev`
        if not (isinstance(error, BookchatError) or is_store_error(error)):
            raise
        log.warning("the index could not be opened (%s); topics come without pages", error)
        retriever = None

    async def run() -> Report:
        engine = make_engine(settings.effective_database_url, settings)
        try:
            await _check_site(make_sessionmaker(engine), site, settings.site_name)
            return await build_report(
                make_sessionmaker(engine),
                report_period(since, site),
                settings=settings,
                embedder=embedder,
                retriever=retriever,
            )
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _check_site(
    sessionmaker: async_sessionmaker[AsyncSession], site: str | None, configured: str
) -> None:
    """A `--site` that neither is configured nor has any session in the history is a typo:
    `site_not_found` naming the sites there are (an empty report would look like no usage).
    Without `--site`, a history holding several sites gets a warning on stderr: the report
    adds them all up."""
    from sqlmodel import select

    from cli.errors import CliError
    from shared.errors import ErrorCode
    from shared.models import ChatSession

    async with sessionmaker() as db:
        known = set((await db.exec(select(ChatSession.site).distinct())).all())
    known.add(configured)
    if site is None:
        if len(known) > 1:
            typer.secho(
                f"this history holds {len(known)} sites ({', '.join(sorted(known))}); the "
                "report adds them up: --site NAME reports one",
                err=True,
                fg="yellow",
            )
        return
    if site not in known:
        raise CliError(
            ErrorCode.SITE_NOT_FOUND,
            f"no site {site!r} here (sites: {', '.join(sorted(known))}); "
            "--site takes a BOOKCHAT_SITE_NAME",
        )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _ms(value: int | None) -> str:
    if value is None:
        return "–"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _day(value: Any) -> str:
    return str(value)[:16].replace("T", " ")


def _summary(report: Report) -> list[tuple[str, str]]:
    u, f = report.usage, report.feedback
    return [
        ("questions", str(u.questions)),
        ("answered", str(u.answered)),
        ("declined", f"{u.declined} ({_pct(u.decline_rate)})"),
        ("cut off by the token limit", str(u.cut_off)),
        ("median time to answer", _ms(u.answer_ms_median)),
        ("p95 time to answer", _ms(u.answer_ms_p95)),
        ("thumbs up / down", f"{f.up} / {f.down} ({_pct(f.down_rate)} down)"),
        ("questions about highlighted text", str(u.selection_questions)),
    ]


def _sections(report: Report) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """Each part of the report as (title, column names, rows of text): one shape that the
    table and Markdown renderers share."""
    u, f, g = report.usage, report.feedback, report.gaps
    yield "Summary", ["measure", "value"], [list(row) for row in _summary(report)]
    yield (
        "Knowledge gaps (declined or down-voted questions, by topic)"
        + (f" — {g.note}" if g.note else ""),
        ["questions", "declined", "down-voted", "example questions", "nearest pages", "seen"],
        [
            [
                str(t.questions),
                str(t.declined),
                str(t.down_voted),
                " | ".join(t.examples),
                " | ".join(p.url for p in t.nearest_pages),
                f"{_day(t.first_seen)} → {_day(t.last_seen)}",
            ]
            for t in g.topics
        ],
    )
    yield (
        "Questions and declines per day (UTC)",
        ["day", "questions", "declined"],
        [[str(d.day), str(d.questions), str(d.declined)] for d in u.per_day],
    )
    yield (
        "Thumbs up / down per day (UTC)",
        ["day", "up", "down"],
        [[str(d.day), str(d.up), str(d.down)] for d in f.per_day],
    )
    yield (
        "Down-voted answers",
        ["rated", "comment", "question", "answer", "sources"],
        [
            [
                _day(d.rated_at),
                d.comment or "",
                d.question,
                d.answer,
                " | ".join(str(c.get("url") or "") for c in d.citations),
            ]
            for d in f.down_voted
        ],
    )
    yield (
        "Most cited pages",
        ["page", "title", "citations"],
        [[p.url or p.path, p.title, str(p.citations)] for p in u.top_cited_pages],
    )
    yield (
        "Most cited sections",
        ["section", "heading", "citations"],
        [[s.url, s.heading, str(s.citations)] for s in u.top_cited_sections],
    )
    yield (
        "Questions by page asked from",
        ["page_url", "questions", "declined"],
        [[p.page_url, str(p.questions), str(p.declined)] for p in u.questions_by_page],
    )
    yield (
        "Questions about highlighted text (most recent)",
        ["asked", "selection", "question", "page_url"],
        [
            [_day(s.asked_at), s.selection, s.question, s.page_url or ""]
            for s in u.recent_selection_questions
        ],
    )
    if u.index_commits:  # a site from git
        yield (
            "Answers by index commit (newest first)",
            ["commit", "answers", "declined", "seen"],
            [
                [c.commit[:12], str(c.answers), str(c.declined),
                 f"{_day(c.first_answer)} → {_day(c.last_answer)}"]
                for c in u.index_commits
            ],
        )  # fmt: skip


def _heading(report: Report) -> str:
    p = report.period
    site = f"site {p.site}" if p.site else "all sites"
    text = f"bookchat report: {_day(p.since)} → {_day(p.until)} UTC, {site}"
    if not report.question_text_stored:
        text += " (question text is not stored on this deployment)"
    return text


def _markdown(report: Report) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [f"# {_heading(report)}", ""]
    for title, columns, rows in _sections(report):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["_None in this period._", ""]
            continue
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def _csv(report: Report) -> str:
    """One tidy table for spreadsheets: section, row number, column, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "row", "column", "value"])
    for title, columns, rows in _sections(report):
        section = title.split(" — ")[0]
        for number, row in enumerate(rows, 1):
            for column, value in zip(columns, row, strict=True):
                writer.writerow([section, number, column, value])
    return out.getvalue()


def _tables(report: Report, console: Console) -> None:
    console.print(f"[bold]{_heading(report)}[/bold]")
    for title, columns, rows in _sections(report):
        table = Table(title=title, title_justify="left", show_lines=len(columns) > 3)
        for column in columns:
            numeric = column in {"questions", "declined", "down-voted", "up", "down", "citations"}
            table.add_column(column, justify="right" if numeric else "left", overflow="fold")
        for row in rows:
            table.add_row(*row)
        if not rows:
            table.add_row(*(["none in this period"] + [""] * (len(columns) - 1)))
        console.print(table)


def render(report: Report, fmt: ReportFormat, console: Console | None = None) -> str | None:
    """The report as text in `fmt`; TABLE prints to `console` (rich) and returns None."""
    if fmt is ReportFormat.JSON:
        return report.model_dump_json(indent=2)
    if fmt is ReportFormat.MARKDOWN:
        return _markdown(report)
    if fmt is ReportFormat.CSV:
        return _csv(report)
    _tables(report, console or Console())
    return None
