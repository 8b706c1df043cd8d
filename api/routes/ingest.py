"""Admin: start a (re-)indexing job of the configured site."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from api.deps import AdminDep, StateDep
from api.enqueue import enqueue_ingestion
from api.schemas import ErrorBody, JobAccepted

router = APIRouter(tags=["admin"])


class IngestionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_rebuild: bool = False


@router.post(
    "/v1/ingestions",
    status_code=202,
    response_model=JobAccepted,
    responses={401: {"model": ErrorBody}, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def start_ingestion(
    state: StateDep, _admin: AdminDep, body: IngestionRequest | None = None
) -> JobAccepted:
    """Re-index the configured site (incremental unless `full_rebuild`)."""
    return await enqueue_ingestion(state, full_rebuild=bool(body and body.full_rebuild))
