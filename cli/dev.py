"""`bookchat dev`: the embedded default in one process.

No service has to be running: a private redis-server (broker + job store) is started under
BOOKCHAT_DATA_DIR, history goes to SQLite and vectors to a local Qdrant store. A question still
travels the production path: API -> Redis broker -> Celery task -> job store. The Celery worker
runs in this process (a threads pool of BOOKCHAT_CHAT_CONCURRENCY answers in flight, as
`bookchat worker` runs) because the embedded store admits one process; the API, which never
touches the store, runs as a process of its own where the machine has two cores or more (the
Procfile's `web` command), else in a thread beside the worker.

What a person sees: the URL, the site being indexed, its progress, and "ready". A question asked
before the index is ready waits for it (worker/index_wait.py). Where the services are is recorded
in `<data_dir>/dev.json` for the operator commands; a `bookchat dev` started after a killed one
stops the redis-server it left and puts the jobs it was running back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import typer
import uvicorn

from cli.embedded import (
    DevServices,
    migrate_embedded,
    process_start,
    running_dev,
    start_private_redis,
    stop_orphan_redis,
)
from cli.errors import ALREADY_RUNNING, CliError, ExitCode
from shared.errors import ErrorCode
from shared.logging import configure_logging
from shared.settings import Settings, get_settings

__all__ = ["SAMPLE_SITE", "citation_target", "run_dev"]

SAMPLE_SITE = Path(__file__).resolve().parents[1] / "examples" / "sample-site"

log = logging.getLogger("bookchat.dev")


def _say(message: str, color: str | None = None) -> None:
    typer.secho(message, fg=color, err=True)


def citation_target(settings: Settings, site_dir: Path | None) -> str:
    """Where the index's citations link, in words: BOOKCHAT_SITE_URL (`--site-url`), else the
    site's docusaurus.config `url` + `baseUrl` (ingestion_jobs/docusaurus.py builds the links
    the same way). ``site_dir`` None: a site from git, not fetched yet."""
    from ingestion_jobs.site_config import read_site_options

    if settings.site_url:
        return f"{settings.site_url} (--site-url / BOOKCHAT_SITE_URL)"
    if site_dir is None:
        return "the repository's docusaurus.config url + baseUrl (--site-url changes it)"
    config = read_site_options(site_dir).config
    if not config.url:
        return f"{config.base_url} (relative: the config has no url; --site-url sets one)"
    return (
        f"{config.url}{config.base_url} (docusaurus.config's url + baseUrl; --site-url changes it)"
    )


def run_dev(
    site: Path | None,
    *,
    host: str,
    port: int,
    site_url: str | None = None,
    repo: str | None = None,
    ref: str | None = None,
    subdir: str | None = None,
) -> int:
    """Serve everything; the site is ``site`` (a folder), else ``repo`` (or
    BOOKCHAT_SITE_REPO: a git repository the worker fetches before each ingestion), else the
    sample site."""
    for name, value in (("REPO", repo), ("REF", ref), ("SUBDIR", subdir)):
        if value is not None:
            os.environ[f"BOOKCHAT_SITE_{name}"] = value
    if site_url:
        os.environ["BOOKCHAT_SITE_URL"] = site_url
    from_repo = site is None and os.environ.get("BOOKCHAT_SITE_REPO")
    site_dir: Path | None = None
    if from_repo:
        os.environ.pop("BOOKCHAT_SITE_DIR", None)
        get_settings.cache_clear()
        shown = _repo_shown(get_settings())
    else:
        os.environ.pop("BOOKCHAT_SITE_REPO", None)
        site_dir = (site or SAMPLE_SITE).resolve()
        if not site_dir.is_dir():
            raise CliError(
                ErrorCode.SITE_NOT_FOUND, f"no site at {site_dir} (give --site SITE_DIR)"
            )
        os.environ["BOOKCHAT_SITE_DIR"] = shown = str(site_dir)
    os.environ.setdefault("BOOKCHAT_PUBLIC_BASE_URL", "")
    get_settings.cache_clear()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = settings.data_dir.resolve()
    configure_logging(
        level=settings.log_level, json=settings.log_json, secrets=settings.secret_values()
    )
    _quiet_libraries()

    other = running_dev(data_dir)
    if other is not None and other.pid != os.getpid():
        raise CliError(
            ALREADY_RUNNING,
            f"bookchat dev already runs on {data_dir} (pid {other.pid}, {other.api_url}); "
            f"stop it first, or give this one another BOOKCHAT_DATA_DIR",
            ExitCode.ALREADY_RUNNING,
        )
    left = DevServices.load(data_dir)
    if left is not None and stop_orphan_redis(left):
        _say(f"stopped the redis-server (pid {left.redis_pid}) a killed bookchat dev left running")

    redis_server = None
    if settings.redis_url is None:
        redis_server = start_private_redis(data_dir)
        os.environ["BOOKCHAT_REDIS_URL"] = redis_server.url
        get_settings.cache_clear()
        settings = get_settings()
    api_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    record = DevServices(
        pid=os.getpid(),
        api_url=api_url,
        redis_url=settings.redis_url,
        redis_pid=redis_server.process.pid if redis_server else None,
        site_dir=shown,
        site_name=settings.site_name,
        started_at=time.time(),
        pid_start=process_start(os.getpid()),
    )
    record.save(data_dir)
    try:
        return _serve(settings, shown, site_dir, host=host, port=port, api_url=api_url)
    finally:
        if redis_server is not None:
            redis_server.stop()
        DevServices.forget(data_dir, os.getpid())


def _repo_shown(settings: Settings) -> str:
    """The configured repository as shown: no credentials; its ref and subdir."""
    from shared.repo_url import redact

    assert settings.site_repo is not None
    where = redact(settings.site_repo.get_secret_value()) + f" @ {settings.site_ref or 'HEAD'}"
    return where + (f" ({settings.site_subdir})" if settings.site_subdir else "")


def _serve(
    settings: Settings,
    shown: str,
    site_dir: Path | None,
    *,
    host: str,
    port: int,
    api_url: str,
) -> int:
    migrate_embedded(settings)

    # Imported only now: the Celery app reads its settings (the broker URL) when first used.
    from celery import signals

    from api.main import create_app
    from worker.celery_app import app as celery_app

    recovered = _recover_jobs(settings)
    if recovered:
        _say(f"put back in the queue {recovered} job(s) a killed bookchat dev was running")
    job_id = _queue_initial_ingest(settings)

    api = _ApiProcess(host, port) if _cores() >= 2 else _ApiThread(create_app(settings), host, port)
    if not api.start():
        raise CliError(
            ErrorCode.INTERNAL_ERROR,
            f"the API could not listen on {host}:{port} (in use? try --port, or make dev PORT=)",
        )
    _say(f"bookchat: {api_url}/  (API docs: {api_url}/docs; Ctrl-C stops everything)", "green")
    _say(f"indexing {shown} (job {job_id}); questions asked meanwhile wait for it")
    _say(
        f"citations link to {citation_target(settings, site_dir)}; the widget opens them on "
        "the origin the reader is on (localhost, a preview) when the page names that URL"
    )

    worker_ready = threading.Event()
    signals.worker_ready.connect(lambda **_: worker_ready.set(), weak=False)
    threading.Thread(
        target=_report_ingestion,
        args=(settings, job_id, worker_ready, api_url),
        name="bookchat-progress",
        daemon=True,
    ).start()
    try:
        celery_app.Worker(
            pool="threads",
            concurrency=settings.chat_concurrency,
            queues=["chat", "ingest"],
            loglevel=settings.log_level,
            hostname=f"bookchat-dev@{host}",
            without_mingle=True,
            without_gossip=True,
            quiet=True,  # no banner: the lines above say what a person needs
        ).start()
    finally:
        api.stop()
    return 0


def _cores() -> int:
    """CPU cores this process may run on (a container's CPU set, where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _ApiThread:
    """The API in a thread of this process: on a one-core machine, where a second process
    would only add a context switch."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, name="bookchat-api", daemon=True)

    def start(self) -> bool:
        """Serve; False when the API could not listen."""
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            time.sleep(0.05)
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class _ApiProcess:
    """The API as its own process (`uvicorn api.main:app`, the Procfile's `web`), so that it
    has a core and a GIL of its own: in this process's GIL, the worker's CPU under load (the
    agent runs of 200 answers in flight) delayed every request the API served, and a
    CPU-bound stretch in the worker froze it. It reads the same settings (this process's
    environment, which names the private Redis), never opens the store, and ends with this
    process: stopped by `stop()`, and on Linux sent SIGTERM by the kernel if this process is
    killed (`PR_SET_PDEATHSIG`). If it exits on its own, this process stops too."""

    def __init__(self, host: str, port: int) -> None:
        self._argv = [
            sys.executable, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port),
            "--log-level", "warning",
        ]  # fmt: skip
        self._bind_host = host
        self._host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Start it and wait until it listens; False when the port is taken (checked first:
        a connection to another server on it would look like ours) or it exited first."""
        family = socket.AF_INET6 if ":" in self._bind_host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self._bind_host, self._port))
            except OSError:
                return False
        self._process = subprocess.Popen(self._argv, preexec_fn=_die_with_parent)
        while self._process.poll() is None:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self._host, self._port), timeout=0.5),
            ):
                threading.Thread(target=self._watch, name="bookchat-api-watch", daemon=True).start()
                return True
            time.sleep(0.05)
        return False

    def _watch(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if not self._stopping.is_set():
            _say(f"the API process exited (code {code}); stopping", "red")
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's warm shutdown, then stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _quiet_libraries() -> None:
    """What a person starting `bookchat dev` does not need to read."""
    # The in-process worker accepts JSON only (no pickle), which is what Celery's warning about
    # running as root guards against; `bookchat dev` in a container often runs as root.
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    # Celery's own lines (connected, task received/succeeded): our lines say the same per job.
    logging.getLogger("celery").setLevel(logging.WARNING)


def _recover_jobs(settings: Settings) -> int:
    """Jobs a killed `bookchat dev` was running go back to the queue (or fail `worker_lost`
    after MAX_ATTEMPTS): no worker but this process's serves this broker, so every unfinished
    job whose message is not waiting in a queue lost its worker."""
    from shared.jobs import Job, JobStore
    from shared.redis_client import make_redis
    from worker.cleanup import cleanup_jobs
    from worker.locks import lock_key
    from worker.tasks import send_job

    async def requeue(job: Job) -> None:
        await asyncio.to_thread(send_job, job)

    async def recover() -> int:
        redis = make_redis(settings.redis_url)
        try:
            # The site's ingestion lock, if any, was the killed process's.
            await redis.delete(lock_key(settings.site_name))
            jobs = JobStore(redis, ttl_s=settings.job_ttl_s)
            report = await cleanup_jobs(
                jobs, settings, redis=redis, requeue=requeue, every_worker_lost=True
            )
            return len(report.requeued) + len(report.marked_lost)
        finally:
            await redis.aclose()

    return asyncio.run(recover())


def _queue_initial_ingest(settings: Settings) -> str:
    """Queue the site's (incremental) ingestion through Celery, like any other job."""
    from shared.queues import TaskName
    from shared.redis_client import make_redis
    from worker.celery_app import app as celery_app
    from worker.ingest_job import create_ingest_job

    async def create() -> str:
        from shared.jobs import JobStore

        redis = make_redis(settings.redis_url)
        try:
            jobs = JobStore(redis, ttl_s=settings.job_ttl_s)
            job = await create_ingest_job(redis, jobs, settings, trigger="dev")
            return job.id
        finally:
            await redis.aclose()

    job_id = asyncio.run(create())
    celery_app.send_task(str(TaskName.INGEST), kwargs={"job_id": job_id})
    return job_id


def _report_ingestion(
    settings: Settings, job_id: str, worker_ready: threading.Event, api_url: str
) -> None:
    """Follow the initial ingestion's events and say, in a few lines, how far it got."""
    try:
        outcome = asyncio.run(_follow(settings, job_id))
    except Exception as error:  # progress is a courtesy: never take dev down with it
        log.warning("could not follow the ingestion: %r", error)
        return
    worker_ready.wait()
    if outcome.get("error"):
        failure = outcome["error"]
        _say(f"indexing failed: {failure.get('code')}: {failure.get('message')}", "red")
        return
    result = outcome.get("result") or {}
    if result.get("skipped"):
        _say(f"ready once ingest job {result.get('running_job_id')} (already running) ends")
        return
    _say(
        f"ready: {result.get('chunks_total', '?')} passages from {result.get('pages_seen', '?')} "
        f"pages ({result.get('chunks_embedded', 0)} embedded now, "
        f"{result.get('seconds', 0):.1f} s"
        + (f", commit {str(result['commit'])[:12]}" if result.get("commit") else "")
        + f"); ask at {api_url}/",
        "green",
    )
    for warning in result.get("warnings") or []:
        _say(
            f"  warning {warning.get('path') or '(site)'}: {warning.get('rule')}: "
            f"{warning.get('message')}",
            "yellow",
        )


async def _follow(settings: Settings, job_id: str) -> dict[str, Any]:
    from shared.jobs import EventType, JobStore
    from shared.redis_client import make_redis

    redis = make_redis(settings.redis_url)
    jobs = JobStore(redis, ttl_s=settings.job_ttl_s)
    said_total = False
    next_share = 0.25
    cursor = "0-0"
    try:
        while True:
            for event in await jobs.events(job_id, after=cursor, block_ms=5000):
                cursor = event.id
                data = event.data
                if event.type is EventType.PROGRESS and data.get("stage") == "discovered":
                    _say(f"  {data.get('pages')} pages, {data.get('chunks')} passages")
                elif event.type is EventType.PROGRESS and data.get("stage") == "embedded":
                    total, done = int(data.get("total") or 0), int(data.get("done") or 0)
                    if total and not said_total:
                        _say(f"  embedding {total} new or changed passages")
                        said_total = True
                    if total and done / total >= next_share and done < total:
                        _say(f"  {done}/{total} embedded")
                        while done / total >= next_share:
                            next_share += 0.25
                elif event.type is EventType.DONE:
                    return {"result": data}
                elif event.type is EventType.ERROR:
                    return {"error": data}
            job = await jobs.get(job_id)
            if job is None:
                return {"error": {"code": "job_not_found", "message": "the job expired"}}
            if job.status.terminal:
                return {"result": job.result, "error": job.error}
    finally:
        await redis.aclose()
