"""The FastAPI application: validates, enqueues, reports. It never runs the agent or embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.cors import WidgetCORS
from api.deps import AppState
from api.errors import install_error_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.middleware import BodySizeLimit
from api.routes import (
    admin,
    chat,
    chatkit,
    health,
    hooks,
    ingest,
    jobs,
    retrieve,
    sessions,
    widget,
)
from shared.access_tokens import load_or_create_secret
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.logging import configure_logging
from shared.queues import make_sender
from shared.redis_client import DEFAULT_REDIS_URL, make_redis
from shared.settings import Settings, get_settings

__all__ = ["app", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(
        level=settings.log_level, json=settings.log_json, secrets=settings.secret_values()
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = make_redis(settings.redis_url)
        engine = make_engine(settings.effective_database_url)
        secret = load_or_create_secret(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.data_dir,
        )
        app.state.bookchat = AppState(
            settings=settings,
            redis=redis,
            jobs=JobStore(redis, ttl_s=settings.job_ttl_s),
            sender=make_sender(settings.redis_url or DEFAULT_REDIS_URL),
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            secret=secret,
        )
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    # FastAPIOffline serves /docs and /redoc from files in the package (FastAPI loads them from a
    # CDN): the embedded default promises to work with no network.
    app = FastAPIOffline(
        title="bookchat",
        version="0.1.0",
        summary="Grounded answers about a documentation site, through a job queue.",
        lifespan=lifespan,
    )
    app.add_middleware(WidgetCORS, settings=settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outermost, so the latency covers every other middleware too.
    app.state.metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    for module in (chat, jobs, sessions, ingest, admin, health, widget, hooks, retrieve, chatkit):
        app.include_router(module.router)
    return app


app = create_app()
