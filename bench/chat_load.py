"""End-to-end chat under load: what bookchat adds on top of the LLM, against the alternatives.

    uv run python -m bench.chat_load [--concurrency 1,10,100] [--rounds 3]
        [--worker-concurrency 100] [--api-workers 1] [--profile]

One run brings up, on this machine:

- the fake LLM (`tests.fake_llm`, its own process) with fixed latency: 400 ms to the first
  token, 50 tokens/s, and its default agent-like behaviour (a `search_docs` call, then an answer);
- the real stack: a uvicorn API process (uvloop + httptools), a Celery worker for the `chat`
  queue (threads pool; Qdrant local mode allows one process per store), real Redis (a dedicated
  db, flushed) and a throwaway Postgres database;
- `bench/sync_baseline.py`: the same agent run inside a synchronous request;
- the sample site indexed with the `hash` embedder, so the embedder does not dominate.

Then, for each concurrency (simulated readers, each asking `--rounds` questions one after the
other), side by side in the same run:

- `llm`: the fake LLM's own time for the same work: the two streamed completions the agent makes
  (tool call, then the answer over the same tool output), with the plain openai client;
- `floor`: `worker.chat.answer_question` called in-process (same retriever, same fake LLM);
- `sync`: POST to the synchronous endpoint (time to first token = its whole latency);
- `stack`: POST /v1/chat, then follow `events_url` by SSE; time to the first `token` event and
  to `done`.

Overhead of a request = its time minus the `llm` median for the same question at the same
concurrency. With `--profile`, py-spy samples the API and the worker during the `stack` phase
at the highest concurrency and the top frames go into the results. Results:
`bench/results/chat_load.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import throwaway_postgres
from tests.stack import index_site_into

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SAMPLE_SITE = ROOT / "examples" / "sample-site"
# A dedicated Redis db (flushed before and after); the tests pick 1-15 by pid.
REDIS_URL = os.environ.get("BOOKCHAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "bench-secret-0123456789abcdef"
PY = sys.executable
LATENCY_FIRST_TOKEN = 0.4
TOKENS_PER_S = 50.0
REQUEST_TIMEOUT_S = 60.0
STAGGER_S = 1.0

QUESTIONS = [
    "How do I install Lumen?",
    "How do I set soft limits on a joint?",
    "What does collision detection do?",
    "How do I tune the servos?",
    "How do I plan a trajectory?",
    "How do I make the first move?",
    "What happens when the emergency stop input is open?",
    "In what unit is collision_threshold given?",
]


# The worker as it was before `worker.chat_job.TokenRelay`: one Redis event per token delta. For
# the before/after comparison only (`--token-events per-token`).
PER_TOKEN_WORKER = """
import sys
import worker.chat_job
from shared.jobs import EventType

class PerToken:
    def __init__(self, jobs, job_id):
        self.jobs, self.job_id = jobs, job_id
    async def add(self, delta):
        await self.jobs.emit(self.job_id, EventType.TOKEN, {"delta": delta})
    async def close(self):
        pass
    async def restart(self):
        pass

worker.chat_job.TokenRelay = PerToken
from celery.__main__ import main
sys.argv[0] = "celery"
main()
"""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def index_sample(data_dir: Path) -> None:
    """Index the sample site with the hash embedder into `data_dir`'s local Qdrant store."""
    from shared.settings import EmbedderKind, Settings

    settings = Settings(data_dir=data_dir, embedder=EmbedderKind.HASH, site_dir=SAMPLE_SITE)
    index_site_into(settings, SAMPLE_SITE)


@dataclass
class Procs:
    """The subprocesses of one run, with logs in `tmp`; each stopped by its own pid."""

    tmp: Path
    env: dict[str, str]
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

    def stop_all(self) -> None:
        for proc in self.started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def bench_processes(database_url: str, *, keep: bool = False) -> Iterator[Procs]:
    """A temporary directory and the base environment of every process of the run: real
    Redis on a flushed db, rate limits off, the hash embedder."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="bookchat-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    env.update(
        {
            "BOOKCHAT_REDIS_URL": REDIS_URL,
            "BOOKCHAT_DATABASE_URL": database_url,
            "BOOKCHAT_EMBEDDER": "hash",
            "BOOKCHAT_SECRET_KEY": SECRET,
            "BOOKCHAT_SITE_DIR": str(SAMPLE_SITE),
            "BOOKCHAT_LOG_LEVEL": "WARNING",
            "BOOKCHAT_RATE_LIMIT_IP_PER_MINUTE": "0",
            "BOOKCHAT_RATE_LIMIT_SESSION_PER_MINUTE": "0",
            "BOOKCHAT_MAX_QUEUED_CHAT_JOBS": "100000",
            "BOOKCHAT_DB_POOL_SIZE": "20",
            "PYTHONUNBUFFERED": "1",
        }
    )
    procs = Procs(tmp=tmp, env=env)
    try:
        yield procs
    finally:
        procs.stop_all()
        redis.Redis.from_url(REDIS_URL).flushdb()
        if keep:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def start_api(procs: Procs, *, workers: int = 1, extra: list[str] | None = None) -> str:
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
        env={"BOOKCHAT_DATA_DIR": str(procs.tmp / "api")},
    )
    return f"http://127.0.0.1:{port}"


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """CPU time (user + system) of a process and its live child processes, from /proc."""
    if not children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


#: The processes whose CPU time each phase records (name -> pid); filled by main().
PIDS: dict[str, int] = {}


# --------------------------------------------------------------------------- samples


@dataclass(slots=True)
class Sample:
    question: int
    total_s: float
    ttft_s: float | None
    submit_s: float | None = None
    ok: bool = True
    error: str | None = None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": _r(pct(ms, 50)),
        "p95_ms": _r(pct(ms, 95)),
        "p99_ms": _r(pct(ms, 99)),
        "mean_ms": _r(statistics.fmean(ms)) if ms else None,
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def run_phase(
    concurrency: int, rounds: int, one: Callable[[int], Awaitable[Sample]]
) -> tuple[list[Sample], dict[str, Any]]:
    """`concurrency` readers, each asking `rounds` questions one after the other (closed loop);
    reader i starts at i/concurrency of STAGGER_S and asks question (i + r) mod n in round r,
    the same in every phase."""

    async def reader(i: int) -> list[Sample]:
        # Readers arrive spread over STAGGER_S, not all in the same millisecond.
        await asyncio.sleep(STAGGER_S * i / concurrency)
        samples = []
        for r in range(rounds):
            q = (i + r) % len(QUESTIONS)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    samples.append(await one(q))
            except Exception as error:  # a failed or stuck request is counted, not fatal
                samples.append(
                    Sample(
                        q, time.perf_counter() - started, None, ok=False, error=repr(error)[:200]
                    )
                )
        return samples

    load_before = load()

    def cpu_now() -> dict[str, float]:
        # The driver's children are the other processes: count only its own time.
        return {n: cpu_seconds(pid, children=n != "driver") for n, pid in PIDS.items()}

    cpu_before = cpu_now()
    started = time.perf_counter()
    per_reader = await asyncio.gather(*(reader(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_now().items()}
    samples = [s for group in per_reader for s in group]
    ok = [s for s in samples if s.ok]
    info = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": dict(Counter(s.error for s in samples if not s.ok)),
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(ok) / wall, 2),
        "load_before": load_before,
        "load_after": load(),
        "total": summary([s.total_s for s in ok]),
        "ttft": summary([s.ttft_s for s in ok if s.ttft_s is not None]),
        # CPU each process spent per answer in this phase (the driver is this process: the
        # load generator, and the agent itself in the `floor` phase).
        "cpu_ms_per_answer": {
            name: round(1000 * seconds / max(1, len(ok)), 1) for name, seconds in cpu.items()
        },
    }
    submits = [s.submit_s for s in ok if s.submit_s is not None]
    if submits:
        info["submit"] = summary(submits)
    return samples, info


# --------------------------------------------------------------------------- the four ways


class Ways:
    def __init__(self, *, llm_url: str, api_url: str, sync_url: str, floor_dir: Path) -> None:
        from openai import AsyncOpenAI

        from ingestion_jobs.embedding import get_embedder
        from shared.settings import EmbedderKind, Settings
        from shared.vectorstore import open_store
        from worker.retrieval import Retriever

        self.settings = Settings(
            data_dir=floor_dir,
            embedder=EmbedderKind.HASH,
            site_dir=SAMPLE_SITE,
            llm_base_url=llm_url,
            llm_api_key="bench-key",
            llm_model="fake-model",
        )
        self.retriever = Retriever(
            open_store(self.settings), get_embedder(self.settings), self.settings.collection
        )
        self.api_url, self.sync_url = api_url, sync_url
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000)
        self.http = httpx.AsyncClient(timeout=120, limits=limits)
        self.llm = AsyncOpenAI(base_url=llm_url, api_key="bench-key", max_retries=0, timeout=120)
        self.tool_outputs = [self._tool_output(q) for q in QUESTIONS]

    def _tool_output(self, question: str) -> str:
        from worker.agent import format_passages

        hits = self.retriever.search(
            question, limit=self.settings.retrieval_limit, site=self.settings.site_name
        )
        return format_passages([(n, hit) for n, hit in enumerate(hits, start=1)])

    async def llm_own(self, q: int) -> Sample:
        """The two completions the agent makes, with the plain client: the LLM's own time."""
        from worker.agent import INSTRUCTIONS, search_docs

        tools: Any = [
            {
                "type": "function",
                "function": {
                    "name": search_docs.name,
                    "description": search_docs.description,
                    "parameters": search_docs.params_json_schema,
                },
            }
        ]
        messages: list[Any] = [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": QUESTIONS[q]},
        ]
        started = time.perf_counter()
        call_id, name, arguments = "", "", ""
        stream = await self.llm.chat.completions.create(
            model="fake-model", messages=messages, tools=tools, stream=True
        )
        async for chunk in stream:
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call_id = call.id or call_id
                if call.function:
                    name = call.function.name or name
                    arguments += call.function.arguments or ""
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": self.tool_outputs[q]},
        ]
        ttft = None
        stream = await self.llm.chat.completions.create(
            model="fake-model", messages=messages, tools=tools, stream=True
        )
        async for chunk in stream:
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - started
        return Sample(q, time.perf_counter() - started, ttft)

    async def floor(self, q: int) -> Sample:
        """`answer_question` in this process: the agent and retrieval, nothing around them."""
        from shared.job_models import ChatRequest
        from worker.chat import answer_question

        started = time.perf_counter()
        ttft: list[float] = []

        async def on_token(_delta: str) -> None:
            if not ttft:
                ttft.append(time.perf_counter() - started)

        request = ChatRequest(message=QUESTIONS[q], session_id=uuid.uuid4())
        answer = await answer_question(
            request, settings=self.settings, retriever=self.retriever, on_token=on_token
        )
        assert not answer.refused, answer
        return Sample(q, time.perf_counter() - started, ttft[0] if ttft else None)

    async def sync(self, q: int) -> Sample:
        started = time.perf_counter()
        response = await self.http.post(f"{self.sync_url}/chat", json={"message": QUESTIONS[q]})
        response.raise_for_status()
        total = time.perf_counter() - started
        return Sample(q, total, total, ok=not response.json()["refused"])

    async def stack(self, q: int) -> Sample:
        """POST /v1/chat, then follow events_url by SSE until `done`."""
        started = time.perf_counter()
        response = await self.http.post(f"{self.api_url}/v1/chat", json={"message": QUESTIONS[q]})
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/chat {response.status_code}")
        submit = time.perf_counter() - started
        events_url = response.json()["events_url"]
        ttft, event, outcome = None, "", ""
        async with self.http.stream("GET", f"{self.api_url}{events_url}") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line == "" and event:
                    if event == "token" and ttft is None:
                        ttft = time.perf_counter() - started
                    if event in ("done", "error"):
                        outcome = event
                        break
                    event = ""
        total = time.perf_counter() - started
        return Sample(q, total, ttft, submit, ok=outcome == "done", error=outcome or "no done")

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.llm.close()


def overheads(
    samples: list[Sample], llm_total: dict[int, float], llm_ttft: dict[int, float]
) -> dict[str, Any]:
    """Each request's time minus the LLM's own median time for the same question."""
    ok = [s for s in samples if s.ok]
    total = [s.total_s - llm_total[s.question] for s in ok]
    ttft = [s.ttft_s - llm_ttft[s.question] for s in ok if s.ttft_s is not None]
    return {"total": summary(total), "ttft": summary(ttft)}


# --------------------------------------------------------------------------- profiling


@contextmanager
def profiling(procs: Procs, names: list[str], out_dir: Path) -> Iterator[dict[str, Path]]:
    """py-spy samples the named processes (and their children) while the body runs."""
    spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in names:
        path = out_dir / f"{name}.collapsed"
        spy = subprocess.Popen(
            [
                shutil.which("py-spy") or "py-spy",
                "record",
                "--pid",
                str(procs.started[name].pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "50",
                "--nonblocking",
                "-o",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(out_dir / f"{name}.py-spy.log").open("wb"),
        )
        spies[name] = (spy, path)
    time.sleep(1.0)  # let py-spy attach
    try:
        yield {name: path for name, (_, path) in spies.items()}
    finally:
        for spy, _ in spies.values():
            spy.send_signal(signal.SIGINT)
        for spy, _ in spies.values():
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()


def top_frames(path: Path, n: int = 25) -> dict[str, Any]:
    """The frames that hold the most samples: self time (leaf) and inclusive, idle excluded."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"error": "no profile"}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split("(")[-1] if "(" in f else f
            for f in stack.split(";")
            if not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += count
        leaf[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in leaf.most_common(n)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(n)],
    }


# --------------------------------------------------------------------------- main


async def measure(
    ways: Ways, levels: list[int], rounds: int, phases: list[str], profile: Callable[[], Any]
) -> dict[str, Any]:
    ways_by_name: dict[str, Callable[[int], Awaitable[Sample]]] = {
        "llm": ways.llm_own,
        "floor": ways.floor,
        "sync": ways.sync,
        "stack": ways.stack,
    }
    for name in phases:  # warm every path: connections, imports, first agent run
        for q in range(2):
            await ways_by_name[name](q)
    results: dict[str, Any] = {}
    for concurrency in levels:
        level: dict[str, Any] = {}
        llm_samples, level["llm"] = await run_phase(concurrency, rounds, ways.llm_own)
        by_q_total: dict[int, list[float]] = defaultdict(list)
        by_q_ttft: dict[int, list[float]] = defaultdict(list)
        for s in llm_samples:
            if s.ok:
                by_q_total[s.question].append(s.total_s)
                if s.ttft_s is not None:
                    by_q_ttft[s.question].append(s.ttft_s)
        llm_total = {q: statistics.median(v) for q, v in by_q_total.items()}
        llm_ttft = {q: statistics.median(v) for q, v in by_q_ttft.items()}
        for name in phases:
            if name == "llm":
                continue
            last = name == "stack" and concurrency == max(levels)
            with profile() if last else _nothing():
                samples, info = await run_phase(concurrency, rounds, ways_by_name[name])
            info["overhead"] = overheads(samples, llm_total, llm_ttft)
            level[name] = info
            print(
                f"c={concurrency:<4} {name:<6} total p50 {info['total']['p50_ms']} "
                f"p95 {info['total']['p95_ms']}  overhead p50 "
                f"{info['overhead']['total']['p50_ms']} p95 {info['overhead']['total']['p95_ms']}"
                f" ttft-overhead p95 {info['overhead']['ttft']['p95_ms']} ok "
                f"{info['ok']}/{info['requests']} {info['answers_per_s']}/s "
                f"load {info['load_after']} cpu {info['cpu_ms_per_answer']}",
                file=sys.stderr,
            )
        print(
            f"c={concurrency:<4} llm    total p50 {level['llm']['total']['p50_ms']} "
            f"p95 {level['llm']['total']['p95_ms']}",
            file=sys.stderr,
        )
        results[str(concurrency)] = level
    return results


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,10,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phases", default="llm,floor,sync,stack")
    parser.add_argument("--worker-pool", default="threads")
    parser.add_argument("--worker-concurrency", type=int, default=100)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--api-args", default="", help="extra uvicorn arguments for the API")
    parser.add_argument(
        "--token-events",
        choices=["coalesced", "per-token"],
        default="coalesced",
        help="per-token: the worker writes one event per token delta (before TokenRelay)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the logs and profiles")
    parser.add_argument("--out", type=Path, default=RESULTS / "chat_load.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    phases = args.phases.split(",")
    command = "uv run python -m bench.chat_load " + " ".join(sys.argv[1:] if argv is None else argv)

    with (
        throwaway_postgres() as database_url,
        bench_processes(database_url, keep=args.keep) as procs,
    ):
        for name in ("worker", "sync", "floor"):
            index_sample(procs.tmp / name)
        llm_port = free_port()
        procs.start(
            "llm",
            [
                PY,
                "-m",
                "tests.fake_llm",
                "--port",
                str(llm_port),
                "--latency-first-token",
                str(LATENCY_FIRST_TOKEN),
                "--tokens-per-s",
                str(TOKENS_PER_S),
            ],
            port=llm_port,
        )
        llm_url = f"http://127.0.0.1:{llm_port}/v1"
        llm_env = {
            "BOOKCHAT_LLM_BASE_URL": llm_url,
            "BOOKCHAT_LLM_API_KEY": "bench-key",
            "BOOKCHAT_LLM_MODEL": "fake-model",
        }
        api_url = start_api(procs, workers=args.api_workers, extra=args.api_args.split())
        celery = [PY, "-m", "celery"]
        if args.token_events == "per-token":
            celery = [PY, "-c", PER_TOKEN_WORKER]
        procs.start(
            "worker",
            [
                *celery,
                "-A",
                "worker.celery_app",
                "worker",
                "-P",
                args.worker_pool,
                "-c",
                str(args.worker_concurrency),
                "-Q",
                "chat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
                "-n",
                f"bench-{os.getpid()}@%h",
            ],
            env={"BOOKCHAT_DATA_DIR": str(procs.tmp / "worker"), **llm_env},
        )
        sync_port = free_port()
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
                str(sync_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            port=sync_port,
            env={"BOOKCHAT_DATA_DIR": str(procs.tmp / "sync"), **llm_env},
        )
        PIDS.update({name: proc.pid for name, proc in procs.started.items()})
        PIDS["driver"] = os.getpid()
        profiles: dict[str, Any] = {}

        @contextmanager
        def profile() -> Iterator[None]:
            if not args.profile:
                yield
                return
            with profiling(procs, ["api", "worker"], procs.tmp) as paths:
                yield
            for name, path in paths.items():
                profiles[name] = top_frames(path)

        async def go() -> dict[str, Any]:
            ways = Ways(
                llm_url=llm_url,
                api_url=api_url,
                sync_url=f"http://127.0.0.1:{sync_port}",
                floor_dir=procs.tmp / "floor",
            )
            try:
                return await measure(ways, levels, args.rounds, phases, profile)
            finally:
                await ways.aclose()

        try:
            results = asyncio.run(go())
        except BaseException:
            print(procs.log("worker")[-3000:], file=sys.stderr)
            raise
    report = {
        "benchmark": "chat_load",
        "command": command,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "llm": {"latency_first_token_s": LATENCY_FIRST_TOKEN, "tokens_per_s": TOKENS_PER_S},
        "setup": {
            "embedder": "hash",
            "store": "qdrant edge (sample site)",
            "database": "postgres (throwaway db)",
            "redis": REDIS_URL,
            "worker": f"celery -P {args.worker_pool} -c {args.worker_concurrency} -Q chat",
            "token_events": args.token_events,
            "api": f"uvicorn --workers {args.api_workers} {args.api_args}".strip(),
            "rounds_per_reader": args.rounds,
            "readers_arrive_over_s": STAGGER_S,
        },
        "results": results,
        "profiles": profiles,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


__all__ = ["Procs", "Sample", "bench_processes", "main"]

if __name__ == "__main__":
    main()
