"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {}})
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when Redis and the database answer."""
    checks: dict[str, str] = {}

    async def redis_check() -> None:
        await state.jobs.redis.ping()  # type: ignore[misc]

    async def db_check() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    for name, check in (("redis", redis_check), ("database", db_check)):
        try:
            async with asyncio.timeout(2):
                await check()
            checks[name] = "ok"
        except Exception as error:  # reported, not raised: readiness is a report
            checks[name] = f"error: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
