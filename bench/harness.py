"""The process harness of the benchmarks: the processes of one run (Redis, the API, a chat worker,
the fake LLM, the synchronous baseline), each with its log and stopped by its own pid, and what
the benchmarks read about them from /proc (CPU time, resident memory, the load average).

Every run gets a private redis-server on a free port (its data in the run's temporary directory),
unless `BOOKCHAT_BENCH_REDIS_URL` names one to use instead (its db is flushed before and after).
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SAMPLE_SITE = ROOT / "examples" / "sample-site"
#: The real site: the docusaurus documentation corpus, read in place at bench time (never copied).
DOCUSAURUS_SITE = ROOT.parent / "shared" / "corpora" / "docusaurus-docs"
SECRET = "bench-secret-0123456789abcdef"
PY = sys.executable
LATENCY_FIRST_TOKEN = 0.4
TOKENS_PER_S = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def index_site(data_dir: Path, site: Path = SAMPLE_SITE, *, embedder: str = "hash") -> None:
    """Index `site` with `embedder` into `data_dir`'s embedded store, as `bookchat ingest` does."""
    from shared.settings import EmbedderKind, Settings
    from tests.stack import index_site_into

    settings = Settings(data_dir=data_dir, embedder=EmbedderKind(embedder), site_dir=site)
    index_site_into(settings, site)


def copy_index(source: Path, target: Path) -> None:
    """A copy of an indexed data directory (each process of a run opens its own store)."""
    shutil.copytree(source, target, dirs_exist_ok=True)


@dataclass
class Procs:
    """The subprocesses of one run, with logs in `tmp`; each stopped by its own pid."""

    tmp: Path
    env: dict[str, str]
    redis_url: str
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.started[name] = proc
        if port is not None:
            self.wait_port(name, port)
        return proc

    def wait_port(self, name: str, port: int, timeout: float = 90) -> None:
        proc = self.started[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log(name)[-3000:]}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{name}: port {port} not open after {timeout}s")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.started.items()}

    def stop(self, names: list[str]) -> None:
        procs = [self.started[n] for n in names if n in self.started]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        # Redis last: the others may still write to it while they stop.
        names = [n for n in self.started if n != "redis"]
        self.stop(names)
        self.stop(["redis"])


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def bench_processes(database_url: str, *, keep: bool = False) -> Iterator[Procs]:
    """A temporary directory, a Redis, and the base environment of every process of the run:
    rate limits off, the hash embedder, the sample site."""
    tmp = Path(tempfile.mkdtemp(prefix="bookchat-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    procs = Procs(tmp=tmp, env=env, redis_url=os.environ.get("BOOKCHAT_BENCH_REDIS_URL", ""))
    try:
        if not procs.redis_url:
            port = free_port()
            procs.start(
                "redis",
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp),
                    "--maxclients",
                    "10000",
                ],
                port=port,
            )
            procs.redis_url = f"redis://127.0.0.1:{port}/0"
        _flush(procs.redis_url)
        env.update(
            {
                "BOOKCHAT_REDIS_URL": procs.redis_url,
                "BOOKCHAT_DATABASE_URL": database_url,
                "BOOKCHAT_EMBEDDER": "hash",
                "BOOKCHAT_SECRET_KEY": SECRET,
                "BOOKCHAT_SITE_DIR": str(SAMPLE_SITE),
                "BOOKCHAT_LOG_LEVEL": "WARNING",
                "BOOKCHAT_RATE_LIMIT_IP_PER_MINUTE": "0",
                "BOOKCHAT_RATE_LIMIT_SESSION_PER_MINUTE": "0",
                "BOOKCHAT_MAX_QUEUED_CHAT_JOBS": "100000",
                # Every simulated reader shares the loopback address: one client to the caps.
                "BOOKCHAT_MAX_CLIENT_FOLLOWERS": "100000",
                "BOOKCHAT_DB_POOL_SIZE": "20",
                "PYTHONUNBUFFERED": "1",
            }
        )
        yield procs
    finally:
        if "redis" not in procs.started and procs.redis_url:
            _flush(procs.redis_url)
        procs.stop_all()
        if keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def start_api(
    procs: Procs,
    *,
    workers: int = 1,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """The real API (uvicorn); returns its base URL."""
    port = free_port()
    procs.start(
        "api",
        [
            PY,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            *(extra or []),
        ],
        port=port,
        env={"BOOKCHAT_DATA_DIR": str(procs.tmp / "api"), **(env or {})},
    )
    return f"http://127.0.0.1:{port}"


def start_fake_llm(
    procs: Procs,
    *,
    latency_first_token: float = LATENCY_FIRST_TOKEN,
    tokens_per_s: float = TOKENS_PER_S,
) -> str:
    """`tests.fake_llm` in its own process with fixed pacing; returns its /v1 base URL."""
    port = free_port()
    procs.start(
        "llm",
        [
            PY,
            "-m",
            "tests.fake_llm",
            "--port",
            str(port),
            "--latency-first-token",
            str(latency_first_token),
            "--tokens-per-s",
            str(tokens_per_s),
        ],
        port=port,
    )
    return f"http://127.0.0.1:{port}/v1"


def llm_env(llm_url: str) -> dict[str, str]:
    """The environment that points a worker or the sync baseline at the fake LLM."""
    return {
        "BOOKCHAT_LLM_BASE_URL": llm_url,
        "BOOKCHAT_LLM_API_KEY": "bench-key",
        "BOOKCHAT_LLM_MODEL": "fake-model",
    }


def start_chat_worker(
    procs: Procs,
    *,
    data_dir: Path,
    pool: str = "threads",
    concurrency: int = 100,
    celery: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A Celery worker for the `chat` queue over the store in `data_dir`. `celery` replaces the
    `python -m celery` command (a script that patches the worker first)."""
    return procs.start(
        "worker",
        [
            *(celery or [PY, "-m", "celery"]),
            "-A",
            "worker.celery_app",
            "worker",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-Q",
            "chat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
            "-n",
            f"bench-{os.getpid()}@%h",
        ],
        env={"BOOKCHAT_DATA_DIR": str(data_dir), **(env or {})},
    )


def start_sync_baseline(procs: Procs, *, data_dir: Path, env: dict[str, str]) -> str:
    """`bench/sync_baseline.py` (the agent inside the request); returns its base URL."""
    port = free_port()
    procs.start(
        "sync",
        [
            PY,
            "-m",
            "uvicorn",
            "bench.sync_baseline:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        port=port,
        env={"BOOKCHAT_DATA_DIR": str(data_dir), **env},
    )
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- what /proc says


def machine() -> dict[str, Any]:
    """The machine, and the code measured: the commit (+ "dirty" with uncommitted changes)."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit.stdout.strip() + (" dirty" if dirty.stdout.strip() else ""),
    }


def load() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def loadavg() -> str:
    """The three load averages, as `uptime` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: str) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return stat.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """CPU time (user + system) of a process and its live child processes, from /proc."""
    if not children:
        fields = _stat_fields(Path(f"/proc/{pid}/stat").read_text())
        return (int(fields[11]) + int(fields[12])) / _TICK
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields((entry / "stat").read_text())
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), in KiB; 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def hwm_kib(pid: int) -> int:
    """Peak resident set size of one process since it started (VmHWM), in KiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """Samples the resident memory of some processes every `interval_s` in a thread, filed under
    the current `label` (set it as the run moves from phase to phase)."""

    def __init__(
        self, pids: dict[str, int], *, interval_s: float = 0.2, label: str = "idle"
    ) -> None:
        import threading

        self.pids, self.interval_s = pids, interval_s
        self.label = label
        self.samples: dict[str, dict[str, list[int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        by_name = self.samples.setdefault(self.label, {})
        for name, pid in self.pids.items():
            by_name.setdefault(name, []).append(rss_kib(pid))

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, Any]:
        """MiB per label and process: peak and median of the samples; `hwm`: each process's
        peak since it started (VmHWM), read now."""
        out: dict[str, Any] = {}
        for label, by_name in self.samples.items():
            out[label] = {
                name: {
                    "peak_mib": round(max(values) / 1024, 1),
                    "median_mib": round(sorted(values)[len(values) // 2] / 1024, 1),
                    "samples": len(values),
                }
                for name, values in by_name.items()
                if values
            }
        out["hwm_mib"] = {name: round(hwm_kib(pid) / 1024, 1) for name, pid in self.pids.items()}
        return out


__all__ = [
    "RssSampler",
    "DOCUSAURUS_SITE",
    "RESULTS",
    "ROOT",
    "SAMPLE_SITE",
    "SECRET",
    "Procs",
    "bench_processes",
    "copy_index",
    "cpu_seconds",
    "free_port",
    "hwm_kib",
    "index_site",
    "llm_env",
    "load",
    "loadavg",
    "machine",
    "rss_kib",
    "start_api",
    "start_chat_worker",
    "start_fake_llm",
    "start_sync_baseline",
]
