"""The FastAPI application: validates, enqueues, reports. It never runs the agent or embedder.

`create_app(settings)` builds it from the settings its caller read (`bookchat dev`, the tests);
the long-lived clients (Redis, the database engine) are built in its lifespan. `api.main:app`,
what uvicorn serves (Procfile, Dockerfile), is built on first access from the environment's
settings, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.cors import WidgetCORS
from api.deps import AppState
from api.errors import install_error_handlers
from api.mcp import InProcessDocs, McpTransport, build_mcp_server
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
    pages,
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

__all__ = ["create_app"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings) -> FastAPI:
    configure_logging(
        level=settings.log_level, json=settings.log_json, secrets=settings.secret_values()
    )

    mcp = McpTransport(
        build_mcp_server(InProcessDocs(lambda: app.state.bookchat)),
        token=settings.mcp_token.get_secret_value() if settings.mcp_token else None,
        origins=settings.cors_origins,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = make_redis(settings.redis_url)
        engine = make_engine(settings.effective_database_url, settings)
        secret = load_or_create_secret(
            settings.secret_key.get_secret_value() if settings.secret_key else None,
            settings.data_dir,
        )
        app.state.bookchat = AppState(
            settings=settings,
            redis=redis,
            jobs=JobStore(
                redis,
                ttl_s=settings.job_ttl_s,
                keep_question_text=settings.history_store_question_text,
            ),
            sender=make_sender(settings.redis_url or DEFAULT_REDIS_URL),
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            secret=secret,
        )
        try:
            async with mcp.running():
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
    routers = (chat, jobs, sessions, ingest, admin, health, widget, hooks, retrieve, chatkit, pages)
    for module in routers:
        app.include_router(module.router)
    app.router.routes.append(mcp.route)
    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """`api.main:app`, built from the environment's settings when uvicorn first asks for it."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app(get_settings())
    return _app
