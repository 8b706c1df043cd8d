"""Operator commands: `bookchat sites`, `bookchat jobs`, `bookchat worker`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from shared.repo_url import redact
from shared.settings import Settings, get_settings

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _recent_jobs(settings: Settings, limit: int) -> list[dict[str, Any]]:
    from shared.jobs import RECENT_JOBS_KEY, JobStore
    from shared.redis_client import make_redis

    redis = make_redis(settings.redis_url, max_connections=4)
    try:
        store = JobStore(redis, ttl_s=settings.job_ttl_s)
        ids = await redis.zrevrange(RECENT_JOBS_KEY, 0, limit - 1)
        rows: list[dict[str, Any]] = []
        for raw in ids:
            job = await store.get(raw.decode() if isinstance(raw, bytes) else str(raw))
            if job is None:
                continue
            rows.append(
                {
                    "id": job.id,
                    "kind": str(job.kind),
                    "status": str(job.status),
                    "created_at": job.created_at,
                    "updated_at": job.updated_at,
                    "seconds": round(job.updated_at - job.created_at, 3)
                    if job.status.terminal
                    else None,
                    "error": (job.error or {}).get("code"),
                    "site": job.meta.get("request", {}).get("site"),
                    "skipped": (job.result or {}).get("skipped"),
                    "commit": (job.result or {}).get("commit"),
                    "warnings": [
                        f"{w.get('path') or '(site)'}: {w.get('rule')}: {w.get('message')}"
                        for w in (job.result or {}).get("warnings") or []
                        if isinstance(w, dict)
                    ],
                    "attempts": job.attempts,
                }
            )
        return rows
    finally:
        await redis.aclose()


def _count_points(settings: Settings, site: str) -> tuple[int | None, str]:
    """Points of the site in the collection, or None with the reason."""
    from shared.vectorstore import PointFilter, open_store

    try:
        store = open_store(settings)
    except Exception as error:  # the reason is the report (e.g. local store held by a worker)
        return None, str(error)
    try:
        collection = store.current(settings.collection)
        if collection is None:
            return 0, "not indexed"
        return store.count(collection, PointFilter(equal=(("site", site),))), "ok"
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        store.close()


@app.command()
def sites(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Configured sites and their index status: points in the collection, last ingestion."""
    settings = get_settings()
    site = settings.site_name
    points, index_status = _count_points(settings, site)
    try:
        recent = asyncio.run(_recent_jobs(settings, 1000))
        last = next((j for j in recent if j["kind"] == "ingest" and j["site"] == site), None)
    except Exception as error:
        last, recent = None, []
        index_status += f"; job store unavailable: {type(error).__name__}"
    repo = redact(settings.site_repo.get_secret_value()) if settings.site_repo else None
    row = {
        "site": site,
        "site_dir": str(settings.site_dir) if settings.site_dir else None,
        "repo": repo,
        "ref": settings.site_ref if repo else None,
        "collection": settings.collection,
        "points": points,
        "index": index_status,
        "last_ingestion": last,
    }
    if as_json:
        typer.echo(json.dumps([row], indent=2))
        return
    source = (
        f"{repo} @ {settings.site_ref or 'HEAD'}"
        if repo
        else row["site_dir"] or "no BOOKCHAT_SITE_DIR or BOOKCHAT_SITE_REPO"
    )
    typer.echo(f"{site}  ({source})")
    typer.echo(
        f"  collection {settings.collection}: {points if points is not None else '?'} points"
        f" ({index_status})"
    )
    if last is None:
        typer.echo("  last ingestion: none recorded")
    else:
        outcome = f"skipped ({last['skipped']})" if last["skipped"] else last["status"]
        typer.echo(
            f"  last ingestion: {last['id']} {outcome} at {_when(last['updated_at'])}"
            + (f" commit={last['commit']}" if last["commit"] else "")
            + (f" error={last['error']}" if last["error"] else "")
        )
        for warning in last["warnings"]:
            typer.secho(f"  warning {warning}", fg="yellow")


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many")] = 20,
    kind: Annotated[str | None, typer.Option(help="chat, retrieve or ingest")] = None,
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """Recent jobs from the job store, newest first."""
    settings = get_settings()
    rows = asyncio.run(_recent_jobs(settings, limit if not (kind or status) else 10_000))
    rows = [
        r
        for r in rows
        if (kind is None or r["kind"] == kind) and (status is None or r["status"] == status)
    ][:limit]
    if not rows and settings.redis_url is None:
        # No BOOKCHAT_REDIS_URL and no running `bookchat dev` (cli/main.py would have set it):
        # the default Redis was read, not the private one a stopped dev kept its jobs in.
        from shared.redis_client import DEFAULT_REDIS_URL

        typer.secho(
            f"no jobs in {DEFAULT_REDIS_URL}; bookchat dev keeps its jobs in its own "
            f"redis-server, which stops with it (none runs on {settings.data_dir}): start "
            "`bookchat dev`, or set BOOKCHAT_REDIS_URL to the job store to read",
            err=True,
            fg="yellow",
        )
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row))
            continue
        took = f"{row['seconds']:.2f}s" if row["seconds"] is not None else "-"
        extra = row["error"] or (f"skipped: {row['skipped']}" if row["skipped"] else "")
        typer.echo(
            f"{row['id']}  {row['kind']:<8} {row['status']:<9} {_when(row['created_at'])}"
            f"  {took:>9}  {extra}"
        )


class WorkerQueue(StrEnum):
    CHAT = "chat"
    INGEST = "ingest"


@app.command()
def worker(
    queues: Annotated[WorkerQueue, typer.Option(help="The queue this worker serves")],
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Answers in flight (default BOOKCHAT_CHAT_CONCURRENCY, 200)"),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run a Celery worker for one queue (what the Procfile and containers start).

    `--queues chat` runs a threads pool of `BOOKCHAT_CHAT_CONCURRENCY` (200): an answer is a
    coroutine on the process's one event loop that mostly waits on the model, and each pool
    thread only waits for its answer, so one process holds that many answers in flight. With
    a Qdrant server (QDRANT_URL) each queue gets its own worker and the chat worker scales by
    processes (`--scale`); `--queues ingest` is one prefork process (embedding is CPU-bound:
    its own process keeps it off the answers' core). In the embedded default (no QDRANT_URL)
    the local store admits one process only, so `--queues chat` serves both queues in one
    process (ingestion runs in a thread there, off the event loop) and `--queues ingest`
    idles, saying so.
    """
    settings = get_settings()
    in_flight = concurrency or settings.chat_concurrency
    chat_pool = ["--pool", "threads", "--concurrency", str(in_flight)]
    if settings.qdrant_url:
        pool = chat_pool if queues is WorkerQueue.CHAT else ["--concurrency", str(concurrency or 1)]
        served = str(queues)
    elif queues is WorkerQueue.CHAT:
        pool = chat_pool
        served = "chat,ingest"
    else:
        typer.echo(
            "local Qdrant store (no QDRANT_URL): the ingest queue is served by the chat worker, "
            "because only one process may open the store. Idling.",
            err=True,
        )
        # Exiting would make honcho stop every process: wait for a signal instead.
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
        raise typer.Exit(0)
    # Task events only with BOOKCHAT_CELERY_TASK_EVENTS=true (a running Flower switches them on
    # by itself): they cost the chat worker CPU on every answer.
    events = ["-E"] if settings.celery_task_events else []
    # This interpreter's celery, not one found on PATH: `.venv/bin/bookchat worker` run by its
    # path (no activated venv) has no `celery` on PATH.
    argv = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "-Q", served, "-n", f"{queues}@%h", *events, "--loglevel", loglevel, *pool,
    ]  # fmt: skip
    typer.echo(f"starting: {' '.join(argv[2:])}", err=True)
    sys.stderr.flush()
    os.execv(argv[0], argv)
