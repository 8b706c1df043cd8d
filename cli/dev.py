"""`bookchat dev`: the embedded default in one process.

No service has to be running: a private redis-server (broker + job store) is started under
BOOKCHAT_DATA_DIR, history goes to SQLite and vectors to a local Qdrant store. A question still
travels the production path: API -> Redis broker -> Celery task -> job store. The Celery worker
runs in this process (threads pool) because Qdrant's local mode lets only one process open the
store; the API runs in a thread beside it and never touches the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

import typer
import uvicorn

from cli.embedded import start_private_redis
from cli.errors import CliError
from shared.errors import ErrorCode
from shared.logging import configure_logging
from shared.settings import Settings, get_settings

__all__ = ["SAMPLE_SITE", "run_dev"]

SAMPLE_SITE = Path(__file__).resolve().parents[1] / "examples" / "sample-site"

log = logging.getLogger("bookchat.dev")


def run_dev(site: Path | None, *, host: str, port: int) -> int:
    site_dir = (site or SAMPLE_SITE).resolve()
    if not site_dir.is_dir():
        raise CliError(ErrorCode.SITE_NOT_FOUND, f"no site at {site_dir} (give --site SITE_DIR)")
    os.environ["BOOKCHAT_SITE_DIR"] = str(site_dir)
    os.environ.setdefault("BOOKCHAT_PUBLIC_BASE_URL", "")
    get_settings.cache_clear()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(level=settings.log_level, json=settings.log_json)

    redis_server = None
    if settings.redis_url is None:
        redis_server = start_private_redis(settings.data_dir)
        os.environ["BOOKCHAT_REDIS_URL"] = redis_server.url
        get_settings.cache_clear()
        settings = get_settings()
        log.info("private redis-server at %s", redis_server.url)

    from shared.migrate import upgrade_database

    if settings.database_url is None:
        upgrade_database(settings.effective_database_url)

    # Imported only now: the Celery app reads the broker URL from settings at import.
    from api.main import create_app
    from worker.celery_app import app as celery_app

    job_id = _queue_initial_ingest(settings)

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    )
    api_thread = threading.Thread(target=server.run, name="bookchat-api", daemon=True)
    api_thread.start()
    typer.secho(
        f"bookchat is up: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)\n"
        f"indexing {site_dir} as job {job_id}; Ctrl-C stops everything",
        fg="green",
        err=True,
    )
    try:
        celery_app.Worker(
            pool="threads",
            concurrency=4,
            queues=["chat", "ingest"],
            loglevel=settings.log_level,
            hostname=f"bookchat-dev@{host}",
            without_mingle=True,
            without_gossip=True,
        ).start()
    finally:
        server.should_exit = True
        api_thread.join(timeout=10)
        if redis_server is not None:
            redis_server.stop()
    return 0


def _queue_initial_ingest(settings: Settings) -> str:
    """Queue the site's (incremental) ingestion through Celery, like any other job."""
    from shared.job_models import IngestRequest
    from shared.jobs import JobKind, JobStore
    from shared.queues import TaskName
    from shared.redis_client import make_redis
    from worker.celery_app import app as celery_app

    async def create() -> str:
        redis = make_redis(settings.redis_url)
        try:
            job = await JobStore(redis, ttl_s=settings.job_ttl_s).create(
                JobKind.INGEST,
                meta={"request": IngestRequest.for_site(settings).model_dump(mode="json")},
            )
            return job.id
        finally:
            await redis.aclose()

    job_id = asyncio.run(create())
    celery_app.send_task(str(TaskName.INGEST), kwargs={"job_id": job_id})
    return job_id
