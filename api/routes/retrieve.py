"""POST /v1/retrieve: ranked passages for a query, as `bookchat search` ranks them.

The API does not load the embedder or open the vector store: the search runs as a fast job on
the chat queue (worker/retrieve_job.py) and this endpoint waits on the job's event stream for its
`done`, answering 504 `retrieve_timeout` if it does not come in time.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from redis.exceptions import RedisError

from api.deps import AppState, StateDep
from api.enqueue import enqueue
from api.errors import ApiError
from api.limits import check_backpressure, check_rate_limits
from api.schemas import ErrorBody
from shared.errors import ErrorCode
from shared.index_state import building_job
from shared.job_models import PublicPassage, RetrieveRequest, RetrieveResult
from shared.jobs import EventType, JobKind, JobStatus
from shared.queues import TaskName

__all__ = ["router", "wait_for_job"]

router = APIRouter(tags=["retrieve"])

_JOB_ERROR_STATUS: dict[str, int] = {
    ErrorCode.INDEX_UNAVAILABLE: 503,
    ErrorCode.INDEX_EMPTY: 503,
    ErrorCode.JOB_TIMEOUT: 504,
    ErrorCode.RETRIEVE_TIMEOUT: 504,
}


async def wait_for_job(state: AppState, job_id: str, timeout_s: float) -> dict[str, Any] | None:
    """Block on the job's event stream until `done` (returns the result) or `error` (raises
    the job's error as a 503/500); None when `timeout_s` passes first."""
    async for event in state.jobs.follow(job_id, timeout_s=timeout_s):
        if event.type is EventType.DONE:
            return event.data
        if event.type is EventType.ERROR:
            code = str(event.data.get("code") or ErrorCode.INTERNAL_ERROR)
            message = str(event.data.get("message") or "The job failed.")
            known = code in ErrorCode.__members__.values()
            raise ApiError(
                _JOB_ERROR_STATUS.get(code, 500),
                ErrorCode(code) if known else ErrorCode.INTERNAL_ERROR,
                message,
            )
    return None


@router.post(
    "/v1/retrieve",
    response_model=list[PublicPassage],
    responses={
        400: {"model": ErrorBody},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Rate limited; see Retry-After"},
        503: {
            "model": ErrorBody,
            "description": "Queue full or unavailable, or the site's first index is still "
            "being built (`index_building`); see Retry-After",
        },
        504: {"model": ErrorBody, "description": "The search did not finish in time"},
    },
)
async def post_retrieve(
    body: RetrieveRequest, request: Request, state: StateDep
) -> list[PublicPassage]:
    """Ranked passages for a query (the same ranking as `bookchat search`)."""
    client_ip = request.client.host if request.client else "unknown"
    await check_rate_limits(state, client_ip=client_ip, session_id=None)
    await check_backpressure(state)
    if await building_job(state.jobs, state.settings.site_name) is not None:
        raise ApiError(
            503,
            ErrorCode.INDEX_BUILDING,
            "The site is being indexed for the first time; retry shortly.",
            headers={"Retry-After": "10"},
        )
    job = await enqueue(state, JobKind.RETRIEVE, TaskName.RETRIEVE, request=body)
    try:
        result = await wait_for_job(state, job.id, state.settings.retrieve_timeout_s)
    except RedisError as error:
        raise ApiError(
            503,
            ErrorCode.QUEUE_UNAVAILABLE,
            "The job queue is unavailable; retry shortly.",
            headers={"Retry-After": "5"},
        ) from error
    if result is None:
        current = await state.jobs.get(job.id)
        if current is not None and current.status is JobStatus.QUEUED:
            # Nobody will read the answer: let the worker skip it rather than search for no one.
            await state.jobs.fail(job.id, ErrorCode.RETRIEVE_TIMEOUT, "Abandoned by the API.")
        raise ApiError(
            504,
            ErrorCode.RETRIEVE_TIMEOUT,
            f"The search did not finish within {state.settings.retrieve_timeout_s:g} s; "
            "retry shortly.",
            headers={"Retry-After": "5"},
        )
    return RetrieveResult.model_validate(result).passages
