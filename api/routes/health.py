"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from celery import Celery
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.deps import AppState, StateDep
from api.metrics import ApiMetrics, render_metrics
from shared.index_state import building_job, indexed_commit
from shared.llm_status import last_refusal
from shared.queues import QueueName

__all__ = ["WorkerProbe", "router"]

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@dataclass
class WorkerProbe:
    """Which queues have a worker answering, asked over the broker (Celery remote control).

    The ask blocks (kombu) and a dead broker can make it hang well past its timeout, so it runs
    in a thread, at most one at a time, and its answer is cached for `ttl_s`: readiness probes
    every few seconds from several load balancers cost one broadcast per `ttl_s`.
    """

    sender: Celery
    timeout_s: float
    ttl_s: float
    _answer: tuple[float, dict[str, list[str]]] | None = None
    _inflight: asyncio.Future[dict[str, list[str]]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _ask(self) -> dict[str, list[str]]:
        replies: dict[str, Any] | None = self.sender.control.inspect(
            timeout=self.timeout_s
        ).active_queues()
        served: dict[str, list[str]] = {}
        for worker, queues in (replies or {}).items():
            for queue in queues or []:
                served.setdefault(str(queue.get("name")), []).append(worker)
        return served

    async def queues(self) -> dict[str, list[str]]:
        """Queue name -> workers consuming it (cached)."""
        if self._answer is not None and time.monotonic() - self._answer[0] < self.ttl_s:
            return self._answer[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._ask))
        served = await asyncio.wait_for(
            asyncio.shield(self._inflight), self.timeout_s + CHECK_TIMEOUT_S
        )
        self._answer = (time.monotonic(), served)
        return served


def _probe(request: Request, state: AppState) -> WorkerProbe:
    probe: WorkerProbe | None = getattr(request.app.state, "worker_probe", None)
    if probe is None or probe.sender is not state.sender:
        probe = WorkerProbe(
            state.sender, state.settings.readyz_worker_timeout_s, state.settings.readyz_cache_s
        )
        request.app.state.worker_probe = probe
    return probe


@router.get("/readyz", responses={503: {}})
async def readyz(request: Request, state: StateDep) -> JSONResponse:
    """Ready when Redis, the database and Qdrant answer, every queue has a worker, and the
    site's first index is not still being built. A site from git also shows `index_commit`,
    the commit its index was last built from. `checks.llm` warns (without making the API
    not ready) when the model provider lately refused for a reason the operator must fix:
    out of credits, quota used up, model not found (shared/llm_status.py)."""

    async def redis_check() -> str:
        await state.redis.ping()
        return "ok"

    async def db_check() -> str:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return "ok"

    async def qdrant_check() -> str:
        url = state.settings.qdrant_url
        if not url:
            return "embedded"  # local mode: only a worker may open the store
        headers = {}
        if state.settings.qdrant_api_key:
            headers["api-key"] = state.settings.qdrant_api_key.get_secret_value()
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as http:
            response = await http.get(f"{url.rstrip('/')}/healthz", headers=headers)
        response.raise_for_status()
        return "ok"

    async def workers_check() -> str:
        if not state.settings.readyz_require_workers:
            return "not required"
        served = await _probe(request, state).queues()
        missing = [str(q) for q in QueueName if not served.get(str(q))]
        if missing:
            return f"error: no worker on queue {', '.join(missing)}"
        return "ok"

    async def index_check() -> str:
        ingest = await building_job(state.redis, state.jobs, state.settings.site_name)
        if ingest is not None:
            return f"building: the first ingestion (job {ingest}) has not finished"
        return "ok"

    async def llm_check() -> str:
        refusal = await last_refusal(state.redis)
        if refusal is None:
            return "ok"
        return f"warning: {refusal.get('code')}: {refusal.get('message')}"

    async def run(check: Any, limit_s: float) -> str:
        try:
            async with asyncio.timeout(limit_s):
                result: str = await check()
                return result
        except Exception as error:  # reported, not raised: readiness is a report
            return f"error: {type(error).__name__}"

    names = ("redis", "database", "qdrant", "workers", "index", "llm")
    worker_timeout = state.settings.readyz_worker_timeout_s + CHECK_TIMEOUT_S
    results = await asyncio.gather(
        run(redis_check, CHECK_TIMEOUT_S),
        run(db_check, CHECK_TIMEOUT_S),
        run(qdrant_check, CHECK_TIMEOUT_S + 1),
        run(workers_check, worker_timeout + 1),
        run(index_check, CHECK_TIMEOUT_S),
        run(llm_check, CHECK_TIMEOUT_S),
    )
    checks = dict(zip(names, results, strict=True))
    ready = not any(value.startswith(("error", "building")) for value in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if state.settings.site_repo is not None:
        try:
            body["index_commit"], _ = await indexed_commit(state.redis, state.settings.site_name)
        except Exception as error:  # Redis down: the redis check says so already
            body["index_commit"] = f"error: {type(error).__name__}"
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus metrics: HTTP latency, jobs, queue depth, LLM usage, ingestions."""
    api_metrics: ApiMetrics = request.app.state.metrics
    body = await render_metrics(api_metrics, state.redis)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
