"""Admin: start a (re-)indexing job of the configured site."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict

from api.deps import AppState, StateDep
from api.enqueue import enqueue_ingestion
from api.errors import ApiError
from api.schemas import ErrorBody, JobAccepted
from shared.errors import ErrorCode

router = APIRouter(tags=["admin"])


class IngestionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_rebuild: bool = False


def require_admin(state: AppState, authorization: str | None) -> None:
    expected = state.settings.admin_token
    scheme, _, supplied = (authorization or "").partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(supplied.encode(), expected.get_secret_value().encode())
    ):
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "An admin token is required (Authorization: Bearer <BOOKCHAT_ADMIN_TOKEN>).",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post(
    "/v1/ingestions",
    status_code=202,
    response_model=JobAccepted,
    responses={401: {"model": ErrorBody}, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def start_ingestion(
    state: StateDep,
    body: IngestionRequest | None = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JobAccepted:
    """Re-index the configured site (incremental unless `full_rebuild`)."""
    require_admin(state, authorization)
    return await enqueue_ingestion(state, full_rebuild=bool(body and body.full_rebuild))
