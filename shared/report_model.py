"""The maintainer's report's shape: one definition shared by the API (the response schema of
GET /v1/admin/report), the worker (which builds it) and the CLI (which prints it), and the
period it covers. The queries that fill it are in shared/report.py; the SQL they share in
shared/report_sql.py.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from shared.input_rules import check_plain_text

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
    "parse_since",
    "report_period",
]

_SINCE = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_since(text: str) -> timedelta:
    """A look-back like `7d`, `24h`, `2w` (hours, days, weeks; at most 99,999 units).

    Raises ValueError with a message a person can act on for anything else."""
    match = _SINCE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--since {text!r}: use a positive number and h, d or w, e.g. 7d")
    return timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])


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


class IndexCommit(BaseModel):
    """Answers drawn from the index built from one git commit (a site from its repository)."""

    commit: str
    answers: int
    declined: int
    first_answer: datetime
    last_answer: datetime


class UsageSection(BaseModel):
    questions: int
    answered: int = Field(description="Complete answers (neither declined nor cut off)")
    declined: int
    cut_off: int = Field(
        default=0, description="Answers the model's token limit cut off (served trimmed)"
    )
    decline_rate: float | None = Field(description="declined / answered+declined; None = none")
    answer_ms_median: int | None = Field(description="Median time to answer (ms), queue included")
    answer_ms_p95: int | None = Field(description="95th percentile time to answer (ms)")
    per_day: list[DayCount] = Field(description="UTC days with at least one question")
    top_cited_pages: list[CitedPage]
    top_cited_sections: list[CitedSection]
    questions_by_page: list[PageQuestions]
    selection_questions: int = Field(description="Questions asked about highlighted text")
    recent_selection_questions: list[SelectionQuestion]
    index_commits: list[IndexCommit] = Field(
        default_factory=list,
        description="A site from git: the commits the answers' index was built from, newest first",
    )


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
    """The period ending `now` (default: the current time). Raises ValueError when `site` holds
    a control character (the database refuses a NUL in text: that was a 500, issue 30)."""
    if site is not None:
        check_plain_text(site)
    until = now or datetime.now(UTC)
    return ReportPeriod(since=until - since, until=until, site=site)


class GapQuestion(BaseModel):
    """One question the docs did not serve: declined, or answered and down-voted."""

    message_id: uuid.UUID  # the question's row; internal (the vector cache key), never shown
    text: str
    asked_at: datetime
    declined: bool
    down_voted: bool
