"""Request and response bodies of the HTTP API (they become the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from shared.job_models import ChatResult, IngestResult, IngestSkipped, JobError, RetrieveResult
from shared.jobs import Job, JobKind, JobStatus
from shared.models import MessagePublic

__all__ = [
    "ChatAccepted",
    "ChatJobOut",
    "ErrorBody",
    "IngestJobOut",
    "JobAccepted",
    "JobOut",
    "MessageOut",
    "PendingAnswer",
    "RetrieveJobOut",
    "job_out",
]


class ChatAccepted(BaseModel):
    job_id: str
    session_id: str
    session_token: str = Field(description="Send as `X-Session-Token` to continue the session")
    status_url: str
    events_url: str


class PendingAnswer(BaseModel):
    """A question's answer still being written (or never finished), for a reader who reloads:
    follow `events_url` (resume after `last_event_id` to skip what `answer_so_far` holds) or
    poll `status_url`, as after POST /v1/chat."""

    job_id: str
    status: str = Field(description="queued | running | succeeded | failed | expired | gone")
    answer_so_far: str = Field(description="The text streamed so far (since its last restart)")
    progress: dict[str, Any] | None = Field(description="The job's progress (pages being read)")
    error: dict[str, Any] | None = Field(description="Why the job failed, when it did")
    last_event_id: str = Field(description="The last event `answer_so_far` includes")
    status_url: str
    events_url: str


class MessageOut(MessagePublic):
    """A stored message; a question not answered yet carries its `pending` answer."""

    pending: PendingAnswer | None = None


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    events_url: str


class _JobOutBase(BaseModel):
    id: str
    status: JobStatus
    progress: dict[str, Any] | None = None
    error: JobError | None = None
    created_at: float
    updated_at: float


class ChatJobOut(_JobOutBase):
    kind: Literal[JobKind.CHAT]
    result: ChatResult | None = None


class RetrieveJobOut(_JobOutBase):
    kind: Literal[JobKind.RETRIEVE]
    result: RetrieveResult | None = None


class IngestJobOut(_JobOutBase):
    kind: Literal[JobKind.INGEST]
    result: IngestResult | IngestSkipped | None = None


#: A job as GET /v1/jobs/{id} shows it; `kind` says which result it carries.
JobOut = Annotated[ChatJobOut | RetrieveJobOut | IngestJobOut, Field(discriminator="kind")]
_JOB_OUT: TypeAdapter[ChatJobOut | RetrieveJobOut | IngestJobOut] = TypeAdapter(JobOut)


def job_out(job: Job) -> ChatJobOut | RetrieveJobOut | IngestJobOut:
    """The public view of a stored job (its result validated against its kind's model)."""
    return _JOB_OUT.validate_python(
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "progress": job.progress,
            "result": job.result,
            "error": job.error,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
        }
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
