"""The first five minutes and the operator's day, with real processes: `bookchat` as a person
runs it (a subprocess), `bookchat dev` started, killed and restarted, honcho's `web` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from shared.vectorstore.edge import EdgeStore
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BOOKCHAT = [sys.executable, "-c", "from cli.main import main; main()"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BOOKCHAT_") and key not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(BOOKCHAT_DATA_DIR=str(data_dir), BOOKCHAT_EMBEDDER="hash", **extra)
    return env


def test_search_while_another_process_holds_the_store_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = EdgeStore(Settings(data_dir=data).qdrant_path)  # as `bookchat dev` holds it
    try:
        done = subprocess.run(
            [*BOOKCHAT, "search", "home pose"],
            env=_env(data),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "open in another bookchat process" in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Dev:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _start_dev(tmp_path: Path, data: Path, name: str) -> Dev:
    port = _free_port()
    log_path = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [*BOOKCHAT, "dev", "--port", str(port)],
        env=_env(data),
        cwd=tmp_path,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Dev(process, f"http://127.0.0.1:{port}", log_path)


def _wait_healthz(dev: Dev, http: httpx.Client, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert dev.process.poll() is None, dev.output()
        try:
            if http.get(f"{dev.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"bookchat dev did not answer /healthz:\n{dev.output()}")


def _follow(
    http: httpx.Client, dev: Dev, status_url: str, timeout_s: float = 120
) -> dict[str, Any]:
    """Long-poll the job as the widget does, until it ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(f"{dev.url}{status_url}&wait=5", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "expired"):
            return job
    raise AssertionError(f"the job did not end:\n{dev.output()}")


def _stop(dev: Dev) -> None:
    if dev.process.poll() is None:
        dev.process.send_signal(signal.SIGINT)
        try:
            dev.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(dev.process.pid, signal.SIGKILL)  # anything it left in its session


def test_dev_answers_the_first_question_asked_the_moment_healthz_answers(tmp_path: Path) -> None:
    """The newcomer's path: `bookchat dev` with nothing configured (bundled embedder, offline
    model, private redis-server), a question as soon as the server answers at all."""
    data = tmp_path / "data"
    dev = _start_dev(tmp_path, data, "dev")
    try:
        with httpx.Client() as http:
            _wait_healthz(dev, http)
            accepted = http.post(
                f"{dev.url}/v1/chat", json={"message": "How do I send the arm to its home pose?"}
            )
            assert accepted.status_code == 202, accepted.text
            job = _follow(http, dev, accepted.json()["status_url"])
            assert job["status"] == "succeeded", (job, dev.output())
            assert job["result"]["refused"] is False
            assert job["result"]["citations"], job
            assert http.get(f"{dev.url}/readyz").json()["checks"]["index"] == "ok"

            # The widget on a site served locally (another port): allowed with no setting.
            local = http.options(
                f"{dev.url}/v1/chat",
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            )
            assert local.status_code == 200
            assert local.headers["access-control-allow-origin"] == "http://localhost:3000"
            for _ in range(2):
                foreign = http.options(
                    f"{dev.url}/v1/chat",
                    headers={
                        "Origin": "https://docs.example.com",
                        "Access-Control-Request-Method": "POST",
                    },
                )
                assert foreign.status_code == 400

        # The operator commands find the services of the running dev (dev.json).
        jobs = subprocess.run(
            [*BOOKCHAT, "jobs", "--json"], env=_env(data), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert jobs.returncode == 0, jobs.stderr
        rows = [json.loads(line) for line in jobs.stdout.splitlines()]
        assert {row["kind"] for row in rows} == {"chat", "ingest"}
        assert {row["status"] for row in rows} == {"succeeded"}
        sites = subprocess.run(
            [*BOOKCHAT, "sites", "--json"], env=_env(data), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sites.returncode == 0, sites.stderr
        assert json.loads(sites.stdout)[0]["site_dir"].endswith("examples/sample-site")

        # The CLI cannot open the store dev holds: one line that names dev and its API.
        search = subprocess.run(
            [*BOOKCHAT, "search", "home pose"], env=_env(data), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert search.returncode == 3, search.stderr
        assert search.stderr.count("\n") == 1
        assert f"bookchat dev (pid {dev.process.pid})" in search.stderr
        assert f"{dev.url}/v1/retrieve" in search.stderr

        # A second dev on the same data dir says so in one line.
        second = subprocess.run(
            [*BOOKCHAT, "dev", "--port", str(_free_port())], env=_env(data), cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 8, second.stderr
        assert second.stderr.count("\n") == 1
        assert "already runs" in second.stderr
    finally:
        _stop(dev)
    output = dev.output()
    assert output.count("CORS preflight from https://docs.example.com refused") == 1
    for noise in ("setup plugin", "SecurityWarning", "Traceback", "exchange=chat"):
        assert noise not in output, output
    assert "ready:" in output
    assert not (data / "dev.json").exists()  # a clean exit forgets the record


def test_dev_restarted_after_kill_9_stops_the_orphan_redis_and_finishes_the_jobs(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = _start_dev(tmp_path, data, "first")
    try:
        with httpx.Client() as http:
            _wait_healthz(first, http)
            record = json.loads((data / "dev.json").read_text())
            # What a kill in the middle of an answer leaves: a job `running` (its message
            # delivered, never acknowledged) and a job still `queued` whose message was taken.
            asyncio.run(_leave_jobs_in_flight(record["redis_url"]))
            time.sleep(0.5)
            api = _api_children(first.process.pid)
            assert len(api) == 1, "the API is not a process of its own"  # two cores or more
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
            # The API process goes with it (nothing else would stop it, and it holds the port).
            _wait_gone(api[0])
        assert _pid_alive(record["redis_pid"]), "the private redis-server died with dev"

        second = _start_dev(tmp_path, data, "second")
        try:
            with httpx.Client() as http:
                _wait_healthz(second, http)
                assert not _pid_alive(record["redis_pid"]), "the orphan redis-server still runs"
                assert "stopped the redis-server" in second.output()
                new_record = json.loads((data / "dev.json").read_text())
                ended = asyncio.run(_wait_jobs_end(new_record["redis_url"]))
        finally:
            _stop(second)
    finally:
        _stop(first)
    assert ended == {"running-job": "succeeded", "taken-job": "succeeded"}, second.output()
    # Both chat jobs, and the initial ingestion too when the kill came before it ended.
    recovered = re.search(r"put back in the queue (\d+) job\(s\)", second.output())
    assert recovered is not None, second.output()
    assert int(recovered.group(1)) >= 2


def _api_children(pid: int) -> list[int]:
    """`bookchat dev`'s API process (`uvicorn api.main:app`), if it runs one."""
    from tests.faults import child_pids

    return [
        child
        for child in child_pids(pid)
        if b"api.main:app" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _wait_gone(pid: int, timeout_s: float = 20) -> None:
    """Until process `pid` has exited (gone, or a zombie no one reaped yet)."""

    def running() -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.monotonic() + timeout_s
    while running():
        assert time.monotonic() < deadline, f"process {pid} outlived its parent"
        time.sleep(0.1)


def _pid_alive(pid: int) -> bool:
    from cli.embedded import pid_alive

    return pid_alive(pid, named="redis-server")


#: The jobs a killed `bookchat dev` leaves unfinished (chat jobs, as the API creates them).
IN_FLIGHT = {"running-job": str(uuid.uuid4()), "taken-job": str(uuid.uuid4())}


async def _leave_jobs_in_flight(redis_url: str) -> None:
    from shared.jobs import JobKind, JobStore
    from shared.redis_client import make_redis

    redis = make_redis(redis_url)
    try:
        jobs = JobStore(redis, ttl_s=3600)
        for name in ("running-job", "taken-job"):
            session = str(uuid.uuid4())
            job = await jobs.create(
                JobKind.CHAT,
                job_id=IN_FLIGHT[name],
                session_id=session,
                meta={
                    "request": {
                        "message": "How do I send the arm to its home pose?",
                        "session_id": session,
                        "selection": None,
                        "page_url": None,
                    }
                },
            )
            if name == "running-job":
                await jobs.mark_running(job.id)
    finally:
        await redis.aclose()


async def _wait_jobs_end(redis_url: str, timeout_s: float = 120) -> dict[str, str]:
    from shared.jobs import JobStore
    from shared.redis_client import make_redis

    redis = make_redis(redis_url)
    jobs = JobStore(redis, ttl_s=3600)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ended = {}
            for name, job_id in IN_FLIGHT.items():
                job = await jobs.get(job_id)
                if job is not None and job.status.terminal:
                    ended[name] = str(job.status)
            if len(ended) == 2:
                return ended
            await asyncio.sleep(0.2)
        return ended
    finally:
        await redis.aclose()


def test_each_task_lands_in_its_own_queue_only(redis_url: str) -> None:
    """What the worker banner shows is how tasks are routed: `ingest` bound to exchange
    `ingest` with key `ingest`, and a task sent by the worker app (beat, cleanup, dev) or by
    the API's send-only client lands in its own queue and nowhere else."""
    import redis as redis_sync

    from shared.queues import TASK_QUEUES, QueueName, make_sender
    from shared.settings import Settings
    from worker.celery_app import make_celery

    broker = redis_sync.Redis.from_url(redis_url)
    broker.flushdb()
    worker_app = make_celery(Settings(redis_url=redis_url))
    with worker_app.connection_for_write() as connection:
        for queue in worker_app.amqp.queues.values():  # as a consuming worker declares them
            queue(connection.default_channel).declare()
    banner = worker_app.amqp.queues.format()
    for queue_name in QueueName:
        assert f"exchange={queue_name}(direct) key={queue_name}" in banner, banner
    sender = make_sender(redis_url)
    try:
        for task, queue_name in TASK_QUEUES.items():
            for app in (worker_app, sender):
                broker.delete(*[str(q) for q in QueueName])
                app.send_task(str(task), kwargs={"job_id": "routing-probe"})
                lengths = {str(q): broker.llen(str(q)) for q in QueueName}
                expected = {str(q): int(q == queue_name) for q in QueueName}
                assert lengths == expected, (task, app.main)
    finally:
        broker.flushdb()
        sender.close()
        worker_app.close()


def _listens_on_all_interfaces(port: int) -> bool:
    """Whether a socket listens on 0.0.0.0:port (from /proc/net/tcp: state 0A is LISTEN)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"00000000:{port:04X}" and fields[3] == "0A":
            return True
    return False


def test_procfile_web_serves_http_on_all_interfaces_at_port(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    """`honcho start web` as a platform that reads a Procfile runs it: $PORT, the platform's
    REDIS_URL and DATABASE_URL, nothing else configured."""
    port = _free_port()
    empty_env = tmp_path / "platform.env"
    empty_env.write_text("")
    env = _env(
        tmp_path / "data",
        PORT=str(port),
        REDIS_URL=redis_url,
        DATABASE_URL=postgres_url,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    log_path = tmp_path / "honcho.log"
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-e", str(empty_env), "start", "web"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        with httpx.Client() as http:
            while True:
                assert honcho.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    if http.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert _listens_on_all_interfaces(port), log_path.read_text()
            checks = http.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()["checks"]
        assert (checks["redis"], checks["database"]) == ("ok", "ok")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(honcho.pid, signal.SIGTERM)
        try:
            honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
