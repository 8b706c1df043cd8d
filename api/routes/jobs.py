"""Following a job: GET /v1/jobs/{id} (poll or long-poll) and its SSE event stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import AppState, SessionTokenDep, StateDep
from api.errors import ApiError
from api.schemas import ChatJobOut, ErrorBody, IngestJobOut, JobOut, RetrieveJobOut, job_out
from shared.errors import ErrorCode
from shared.jobs import EventType, Job
from shared.tokens import verify_session_token

router = APIRouter(tags=["jobs"])

JobId = Annotated[uuid.UUID, Path(description="The job id returned when it was queued")]
_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
_WAKE_ON = {EventType.STATUS, EventType.PROGRESS, EventType.DONE, EventType.ERROR}


async def _readable_job(state: AppState, job_id: uuid.UUID, token: str | None) -> Job:
    job = await state.jobs.get(str(job_id))
    if job is None:
        raise ApiError(404, ErrorCode.JOB_NOT_FOUND, "No such job (it may have expired).")
    if not token or not verify_session_token(
        state.secret, job.session_id or f"job:{job.id}", token
    ):
        raise ApiError(403, ErrorCode.FORBIDDEN, "This job's token is required to read it.")
    return job


def _etag(job: Job) -> str:
    return f'W/"{job.status}-{job.updated_at:.6f}"'


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses={304: {}, **_ERRORS})
async def get_job(
    job_id: JobId,
    state: StateDep,
    token: SessionTokenDep,
    response: Response,
    wait: Annotated[
        float, Query(ge=0, le=60, description="Long-poll: wait up to this many seconds")
    ] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> ChatJobOut | RetrieveJobOut | IngestJobOut | Response:
    """A job's state; with `wait`, returns as soon as it changes (or after `wait` seconds)."""
    # The stream position is taken before the job is read, so a change landing in between
    # wakes the wait below instead of being missed.
    after = await state.jobs.last_event_id(str(job_id)) if wait else "0-0"
    job = await _readable_job(state, job_id, token)
    if wait and not job.status.terminal and (if_none_match in (None, _etag(job))):
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0.001:
            events = await state.jobs.events(job.id, after=after, block_ms=int(remaining * 1000))
            if not events:
                break
            after = events[-1].id
            if any(event.type in _WAKE_ON for event in events):
                break
        job = await _readable_job(state, job_id, token)
    etag = _etag(job)
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return job_out(job)


@router.get(
    "/v1/jobs/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
)
async def job_events(
    job_id: JobId,
    request: Request,
    state: StateDep,
    token: SessionTokenDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        str | None, Query(pattern=r"^\d+-\d+$", description="Resume after this event id")
    ] = None,
) -> EventSourceResponse:
    """Server-sent events: `status`, `progress`, `token`, `citations`, `done`, `error`.

    Resumable: a reconnecting EventSource sends `Last-Event-ID` and receives exactly the
    events after it. The stream ends after `done` or `error`.
    """
    job = await _readable_job(state, job_id, token)
    start = last_event_id or after or "0-0"
    if not _valid_stream_id(start):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "Last-Event-ID is not an event id.")

    async def stream() -> AsyncIterator[ServerSentEvent]:
        cursor = start
        while True:
            if await request.is_disconnected():
                return
            events = await state.jobs.events(job.id, after=cursor, block_ms=10_000)
            for event in events:
                cursor = event.id
                yield ServerSentEvent(
                    data=orjson.dumps(event.data).decode(), event=str(event.type), id=event.id
                )
                if event.type in (EventType.DONE, EventType.ERROR):
                    return
            if not events and await state.jobs.get(job.id) is None:
                yield ServerSentEvent(
                    data=orjson.dumps(
                        {"code": ErrorCode.JOB_NOT_FOUND, "message": "The job expired."}
                    ).decode(),
                    event=str(EventType.ERROR),
                )
                return
            await asyncio.sleep(0)

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-cache"})


def _valid_stream_id(value: str) -> bool:
    left, sep, right = value.partition("-")
    return bool(sep) and left.isdigit() and right.isdigit() and len(value) < 48


__all__ = ["router"]
