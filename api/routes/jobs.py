"""Following a job: GET /v1/jobs/{id} (poll or long-poll) and its SSE event stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from api.deps import AppState, SessionTokenDep, StateDep, session_of
from api.errors import ApiError
from api.limits import client_key
from api.schemas import ChatJobOut, ErrorBody, IngestJobOut, JobOut, RetrieveJobOut, job_out
from shared.access_tokens import read_stream_token, session_revoked_at
from shared.errors import ErrorCode
from shared.jobs import EventType, InvalidEventIdError, Job, parse_event_id

router = APIRouter(tags=["jobs"])

JobId = Annotated[uuid.UUID, Path(description="The job id returned when it was queued")]
_ERRORS: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody, "description": "Too many connections follow this job"},
}
_WAKE_ON = {EventType.STATUS, EventType.PROGRESS, EventType.DONE, EventType.ERROR}


async def _stream_token(
    token: Annotated[
        str | None,
        Query(max_length=1024, description="The job's stream token (as in status_url)"),
    ] = None,
) -> str | None:
    return token


StreamToken = Annotated[str | None, Depends(_stream_token)]


async def _readable_job(
    state: AppState, job_id: uuid.UUID, stream: str | None, session: str | None
) -> Job:
    """The job, if the caller holds its stream token (from status_url/events_url) or its
    session's token (X-Session-Token); 403 otherwise, 404 when it is gone."""
    job = await state.jobs.get(str(job_id))
    if job is None:
        raise ApiError(404, ErrorCode.JOB_NOT_FOUND, "No such job (it may have expired).")
    if read_stream_token(state.secret, stream) == job.id:
        # A revoked session's jobs are closed to their stream tokens too.
        revoked = job.session_id and await session_revoked_at(state.redis, job.session_id)
        if not revoked:
            return job
    elif session and job.session_id and await session_of(state, session) == job.session_id:
        return job
    raise ApiError(403, ErrorCode.FORBIDDEN, "This job's token is required to read it.")


def _follow(state: AppState, request: Request, job: Job) -> Callable[[], None]:
    """Count a connection following `job` (an event stream, a long-poll) against the caps per
    job and per client (BOOKCHAT_MAX_JOB_FOLLOWERS, BOOKCHAT_MAX_CLIENT_FOLLOWERS)."""
    settings = state.settings
    return state.followers.open(
        job_id=job.id,
        client=client_key(request.client.host if request.client else "unknown"),
        per_job=settings.max_job_followers,
        per_client=settings.max_client_followers,
    )


def _etag(job: Job) -> str:
    return f'W/"{job.status}-{job.updated_at:.6f}"'


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses={304: {}, **_ERRORS})
async def get_job(
    job_id: JobId,
    request: Request,
    state: StateDep,
    token: StreamToken,
    session: SessionTokenDep,
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
    job = await _readable_job(state, job_id, token, session)
    if wait and not job.status.terminal and (if_none_match in (None, _etag(job))):
        close = _follow(state, request, job)
        try:
            async for event in state.jobs.follow(job.id, after=after, timeout_s=wait):
                if event.type in _WAKE_ON:
                    break
        finally:
            close()
        job = await _readable_job(state, job_id, token, session)
    etag = _etag(job)
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return job_out(job)


@router.get(
    "/v1/jobs/{job_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}},
        204: {"description": "The job has ended and nothing follows this position"},
        **_ERRORS,
    },
)
async def job_events(
    job_id: JobId,
    request: Request,
    state: StateDep,
    token: StreamToken,
    session: SessionTokenDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        str | None, Query(max_length=41, description="Resume after this event id")
    ] = None,
) -> Response:
    """Server-sent events: `status`, `progress`, `token`, `citations`, `done`, `error`.

    Resumable: a reconnecting EventSource sends `Last-Event-ID` and receives exactly the
    events after it. The stream ends after `done` or `error`; resuming a finished job at or
    past its last event answers 204 at once (which tells an EventSource to stop reconnecting).
    A position that is not an event id of this job is 422 `invalid_event_id`.
    """
    job = await _readable_job(state, job_id, token, session)
    start = _position(last_event_id or after or "0-0")
    # A stream from the start of a running job (every first connection) can be neither past
    # the end nor finished: the end is read only to judge a resumed or finished one.
    if parse_event_id(start) != (0, 0) or job.status.terminal:
        end = parse_event_id(await state.jobs.last_event_id(job.id))
        if job.status.terminal and parse_event_id(start) >= end:
            return Response(status_code=204, headers={"Cache-Control": "no-cache"})
        if parse_event_id(start) > end:
            raise ApiError(
                422,
                ErrorCode.INVALID_EVENT_ID,
                "Last-Event-ID is past the end of this job's events.",
            )

    async def connected() -> bool:
        return not await request.is_disconnected()

    # Counted from here until the stream ends; `close` runs again as the response's background
    # task in case the stream never started (it counts once).
    close = _follow(state, request, job)

    async def stop_counting() -> None:  # async: Starlette runs a plain function in a thread
        close()

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in state.jobs.follow(job.id, after=start, alive=connected):
                yield ServerSentEvent(
                    data=orjson.dumps(event.data).decode(),
                    event=str(event.type),
                    id=event.id or None,
                )
        finally:
            close()

    return EventSourceResponse(
        stream(),
        ping=15,
        headers={"Cache-Control": "no-cache"},
        background=BackgroundTask(stop_counting),
    )


def _position(value: str) -> str:
    """A Last-Event-ID / ?after= checked to be a Redis Stream id (two unsigned 64-bit parts)."""
    try:
        parse_event_id(value)
    except InvalidEventIdError:
        raise ApiError(
            422, ErrorCode.INVALID_EVENT_ID, "Last-Event-ID is not an event id of this job."
        ) from None
    return value


__all__ = ["router"]
