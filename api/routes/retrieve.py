"""POST /v1/retrieve: ranked passages for a query, as `bookchat search` ranks them.

The API does not load the embedder or open the vector store: the search runs as a fast job on
the chat queue (worker/retrieve_job.py) and this endpoint waits on the job's event stream for its
`done`, answering 504 `retrieve_timeout` if it does not come in time.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import AppState, StateDep
from api.enqueue import run_and_wait
from api.errors import ApiError
from api.limits import check_backpressure, check_rate_limits
from api.schemas import ErrorBody
from shared.errors import ErrorCode
from shared.index_state import building_job
from shared.job_models import PublicPassage, RetrieveRequest, RetrieveResult
from shared.jobs import JobKind
from shared.queues import TaskName

__all__ = ["retrieve_passages", "router"]

router = APIRouter(tags=["retrieve"])


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
    return await retrieve_passages(state, body, client_ip=client_ip)


async def retrieve_passages(
    state: AppState, body: RetrieveRequest, *, client_ip: str
) -> list[PublicPassage]:
    """The search behind `POST /v1/retrieve` and MCP's `search_docs`: the per-IP rate limit,
    the chat queue's back-pressure, then a retrieve job waited for. Raises ApiError (429
    `rate_limited`, 503 `queue_full` / `index_building`, 504 `retrieve_timeout`)."""
    await check_rate_limits(state, client_ip=client_ip, session_id=None)
    await check_backpressure(state)
    if await building_job(state.redis, state.jobs, state.settings.site_name) is not None:
        raise ApiError(
            503,
            ErrorCode.INDEX_BUILDING,
            "The site is being indexed for the first time; retry shortly.",
            headers={"Retry-After": "10"},
        )
    result = await run_and_wait(
        state,
        JobKind.RETRIEVE,
        TaskName.RETRIEVE,
        request=body,
        timeout_s=state.settings.retrieve_timeout_s,
        timeout_code=ErrorCode.RETRIEVE_TIMEOUT,
        timeout_message=(
            f"The search did not finish within {state.settings.retrieve_timeout_s:g} s; "
            "retry shortly."
        ),
    )
    return RetrieveResult.model_validate(result).passages
