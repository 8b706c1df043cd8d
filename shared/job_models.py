"""The job contract: one pydantic model per job kind for what it asks and what it answers.

A job's request is what the API validates as the HTTP body and stores in the job's `meta`
(`{"request": <model as JSON>}`); the worker validates the same model back out of it. A job's
result is what the worker stores on success and `GET /v1/jobs/{id}` serves as `result`, so the
OpenAPI schema at /docs shows each answer's full shape. Nothing here is built from a dict by hand.

| kind       | request            | result                                  |
| ---------- | ------------------ | --------------------------------------- |
| `chat`     | `ChatJobRequest`   | `ChatResult`                            |
| `retrieve` | `RetrieveRequest`  | `RetrieveResult`                        |
| `ingest`   | `IngestRequest`    | `IngestResult` or `IngestSkipped`       |
| `report`   | `ReportPeriod`     | `Report` (both in shared/report_model.py) |
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from shared.input_rules import PageUrl, check_plain_text
from shared.settings import Settings

__all__ = [
    "SKIPPED_ALREADY_RUNNING",
    "ChatJobRequest",
    "ChatRequest",
    "ChatResult",
    "Citation",
    "IngestPageError",
    "IngestWarning",
    "IngestRequest",
    "IngestResult",
    "IngestSkipped",
    "JobError",
    "PublicPassage",
    "RetrieveFilters",
    "RetrieveRequest",
    "RetrieveResult",
]

#: `IngestSkipped.skipped`: another ingestion of the same site holds its lock.
SKIPPED_ALREADY_RUNNING: Final = "already_running"


def _no_control_chars(value: str | None) -> str | None:
    return check_plain_text(value) if value is not None else None


def _not_blank(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be blank")
    return value


# --- chat ----------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    """A reader's question: the body of POST /v1/chat and the request of a chat job (whose
    `session_id` the API always fills in: a new session's id when the body had none)."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=4000, description="The reader's question")
    session_id: uuid.UUID | None = Field(
        default=None, description="Continue this conversation (needs its session token)"
    )
    selection: str | None = Field(
        default=None, max_length=8000, description="Text the reader highlighted on the page"
    )
    page_url: PageUrl | None = Field(
        default=None, max_length=2048, description="The page the reader is on (http(s) URL)"
    )

    @field_validator("message")
    @classmethod
    def _message_not_blank(cls, value: str) -> str:
        return _not_blank(value, "message")

    @field_validator("message", "selection")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        return _no_control_chars(value)


class ChatJobRequest(ChatRequest):
    """A chat job's request as stored in the job: the reader's `ChatRequest`, plus what only
    the API sets. `retry_of`: the job whose question this one asks again (ChatKit's retry);
    the worker replaces that exchange, and what followed it, once this one is answered."""

    retry_of: uuid.UUID | None = Field(default=None, description="The retried question's job")


class Citation(BaseModel):
    """A source of an answer; `number` is the `[n]` marker the answer text uses for it."""

    path: str = Field(description="Page source path relative to the site root")
    url: str = Field(description="Page URL with #anchor")
    heading: str
    title: str
    number: int


class ChatResult(BaseModel):
    """A chat job's answer (or its decline: `refused` true, no citations)."""

    answer: str
    citations: list[Citation]
    refused: bool = Field(description="True when the site does not cover the question")
    session_id: str
    message_id: str | None = Field(description="The stored answer (for feedback)")
    model: str
    usage: dict[str, int] = Field(description="Model requests and tokens")
    truncated: bool = Field(
        default=False,
        description="The model's token limit cut the answer off: its last whole sentences, "
        "marked so",
    )


# --- retrieve ------------------------------------------------------------------------------


_Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(check_plain_text)]
_Text100 = Annotated[str, StringConstraints(max_length=100), AfterValidator(check_plain_text)]
_Text35 = Annotated[str, StringConstraints(max_length=35), AfterValidator(check_plain_text)]


class RetrieveFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each bound sits on the str before the text check, so a long value is "at most N
    # characters" (max_length on `PlainText | None` said "items after validation").
    path_prefix: _Text500 | None = Field(
        default=None, description="Only pages under this folder (`docs/guides`)"
    )
    version: _Text100 | None = Field(default=None, description="Docs version")
    locale: _Text35 | None = Field(default=None, description="Locale (`en`, `fr`)")


class RetrieveRequest(BaseModel):
    """The body of POST /v1/retrieve and the request of a retrieve job."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, description="What to search for")
    limit: int = Field(default=5, ge=1, le=50, description="How many passages, best first")
    filters: RetrieveFilters | None = None

    @field_validator("query")
    @classmethod
    def _query_plain(cls, value: str) -> str:
        value = _not_blank(value, "query")
        _no_control_chars(value)
        return value


class PublicPassage(BaseModel):
    """A passage as it is shown outside the worker (POST /v1/retrieve, `bookchat search`)."""

    path: str = Field(description="Page source path relative to the site root")
    url: str = Field(description="Page URL with #anchor, as Docusaurus renders it")
    heading: str
    title: str
    score: float = Field(description="Fused rank score (higher is better; compares within a list)")
    text: str


class RetrieveResult(BaseModel):
    passages: list[PublicPassage]


# --- ingest --------------------------------------------------------------------------------


class IngestRequest(BaseModel):
    """What an ingestion job of a site carries (API, webhook, beat, `bookchat dev`)."""

    site_dir: str | None
    site: str
    site_url: str | None
    full_rebuild: bool = False
    # The site comes from BOOKCHAT_SITE_REPO: the worker fetches it first. The URL itself (it
    # may hold a token) is read from the worker's settings, never stored in the job.
    from_repo: bool = False

    @classmethod
    def for_site(cls, settings: Settings, *, full_rebuild: bool = False) -> IngestRequest:
        """An ingestion of the configured site (`BOOKCHAT_SITE_REPO` or `_SITE_DIR`,
        `_SITE_NAME`, `_SITE_URL`)."""
        return cls(
            site_dir=str(settings.site_dir) if settings.site_dir else None,
            site=settings.site_name,
            site_url=settings.site_url,
            full_rebuild=full_rebuild,
            from_repo=settings.site_repo is not None,
        )


class IngestPageError(BaseModel):
    """A file that could not be read; the ingestion reports it and goes on."""

    path: str
    code: str = Field(description="Stable, e.g. `bad_frontmatter`, `invalid_utf8`, `too_large`")
    message: str


class IngestWarning(BaseModel):
    """Something of the site the reader could not interpret, and what it assumed instead."""

    path: str = Field(description="The file, relative to the site root (`` for the site)")
    rule: str = Field(description="Stable, e.g. `config.baseUrl`, `mdx.import`, `i18n.locale`")
    message: str


class IngestResult(BaseModel):
    """A finished ingestion's report (`ingestion_jobs.indexer.IngestReport` and the site)."""

    pages_seen: int
    pages_changed: int
    pages_removed: int
    chunks_embedded: int
    chunks_deleted: int
    chunks_total: int
    full_rebuild: bool
    collection: str = Field(description="The physical collection now behind the alias")
    errors: list[IngestPageError]
    warnings: list[IngestWarning] = Field(
        default_factory=list, description="What the reader could not interpret (never silent)"
    )
    seconds: float
    site: str
    commit: str | None = Field(default=None, description="The git commit indexed (a repository)")
    repo: str | None = Field(default=None, description="The repository, without credentials")
    ref: str | None = Field(default=None, description="The branch or tag fetched (HEAD: default)")


class IngestSkipped(BaseModel):
    """An ingestion that did not run because another one of the same site was running."""

    skipped: Literal["already_running"]
    running_job_id: str | None = Field(description="The ingestion holding the site's lock")
    site: str


# --- any kind ------------------------------------------------------------------------------


class JobError(BaseModel):
    """Why a job failed or expired: a stable `code` (see shared/errors.py) and a message."""

    code: str
    message: str
