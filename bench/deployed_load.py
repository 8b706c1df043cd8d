"""Readers at once on what a user deploys: `bookchat dev` and the Procfile, as shipped.

    uv run python -m bench.deployed_load [--readers 100] [--rounds 3] [--ways dev,procfile,sync]
        [--think-readers 1000 --think 10-20 --think-s 60]
        [--out bench/results/deployed_load.json] [--profile]

Unlike `bench/chat_load.py` (its own worker command line and pool size), this starts the
commands a user runs, unmodified and with their shipped defaults (no BOOKCHAT_* setting but the
LLM endpoint and the data dir), one way after the other, over the same fake LLM:

- `dev`: `bookchat dev --port P` (what `make dev` runs), its own data dir: the bundled
  embedder indexes the sample site, a private redis-server, SQLite;
- `procfile`: `bookchat migrate`, `bookchat ingest examples/sample-site` (README), then
  `honcho start web worker_chat` on the Procfile itself, against a private redis-server
  (REDIS_URL) and the embedded default (SQLite, the local store);
- `sync`, the baseline of the same run: `bench/sync_baseline.py`, the same agent inside the
  request (no queue), over an index of the same site with the same (bundled) embedder, its
  history in SQLite as in the embedded default.

The LLM is `tests.fake_llm` in its own process, paced like a hosted model: 400 ms to the first
token, 50 tokens/s. Each reader asks from an address of its own (`X-Forwarded-For`, which both
shipped uvicorn set-ups believe from 127.0.0.1), a new session per question, so the shipped
per-IP and per-session limits apply as they would to real readers. A stack reader POSTs
/v1/chat and follows `events_url` by SSE to `done` (time to first token: the first `token`
event); a sync reader POSTs and waits for the JSON.

Phases per way, after one unmeasured warm-up question: `alone` (one reader, `--alone`
questions one after the other: "one reader's answer time"), `burst` (`--readers` readers ask
one question each at the same moment), `closed` (`--readers` readers ask `--rounds` questions
back to back: answers/s), and with `--think-readers N` a `think` phase (N readers, each reading
every answer for a random `--think` seconds before the next, for `--think-s`). Reported per
phase: answered, answers/s, p50/p95/p99 of the whole
answer and of its overhead (the answer minus the way's own `alone` median), time to first
token, CPU per answer of the way's process tree, peak RSS, the load average before and after.
`python -m bench.deployed_load --report FILE` prints the results as markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    LATENCY_FIRST_TOKEN,
    PY,
    RESULTS,
    ROOT,
    SAMPLE_SITE,
    TOKENS_PER_S,
    Procs,
    bench_processes,
    free_port,
    index_site,
    llm_env,
    loadavg,
    machine,
    start_fake_llm,
    start_sync_baseline,
)
from bench.load_models import Sample, follow_answer
from bench.load_report import pct
from bench.profiling import py_spy_record
from shared.migrate import upgrade_database
from shared.settings import Settings
from tests.conftest import throwaway_postgres

BIN = Path(PY).parent
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
REQUEST_TIMEOUT_S = 180.0

One = Callable[[int, int], Awaitable[Sample]]  # (reader, question index) -> sample


# --------------------------------------------------------------------------- process trees


def _tree(root: int) -> list[int]:
    """`root` and every descendant (honcho -> sh -> uvicorn; bookchat dev -> its API)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def tree_cpu_s(root: int) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree_hwm_mib(root: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of each process of the tree that holds more than 30 MiB, by command."""
    peaks: dict[str, float] = {}
    for pid in _tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        hwm = next((int(line.split()[1]) for line in status.splitlines() if "VmHWM" in line), 0)
        if hwm > 30 * 1024:
            name = " ".join(part.decode(errors="replace") for part in cmd[1:4])
            peaks[f"{pid} {name}"] = round(hwm / 1024, 1)
    return peaks


# --------------------------------------------------------------------------- the ways


def _base_env(procs: Procs, llm_url: str, data_dir: Path) -> dict[str, str]:
    """What a user sets: the LLM endpoint and a data dir. Nothing else of bookchat's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env.pop("QDRANT_URL", None)
    return {**env, **llm_env(llm_url), "BOOKCHAT_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def _start(
    procs: Procs, name: str, argv: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start `argv` with exactly `env` (not the harness's base environment, which sets the
    hash embedder and turns the rate limits off), logged and stopped like the others."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=(procs.tmp / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    procs.started[name] = proc
    return proc


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}/readyz not 200 after {timeout}s:\n{log.read_text()[-3000:]}")


def start_dev(procs: Procs, llm_url: str) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    port = free_port()
    argv = [str(BIN / "bookchat"), "dev", "--port", str(port)]
    env = _base_env(procs, llm_url, procs.tmp / "dev-data")
    proc = _start(procs, "dev", argv, env)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc, procs.tmp / "dev.log")
    return proc, url, [" ".join(["bookchat", *argv[1:]])]


def start_procfile(procs: Procs, llm_url: str) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    redis_port = free_port()
    procs.start(
        "procfile-redis",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(procs.tmp)],
        port=redis_port,
    )  # fmt: skip
    port = free_port()
    env = {
        **_base_env(procs, llm_url, procs.tmp / "procfile-data"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BOOKCHAT_SITE_DIR": str(SAMPLE_SITE),
    }
    steps = [
        ["bookchat", "migrate"],
        ["bookchat", "ingest", "examples/sample-site"],
    ]
    for step in steps:
        subprocess.run([str(BIN / step[0]), *step[1:]], cwd=ROOT, env=env, check=True)
    argv = [str(BIN / "honcho"), "start", "-p", str(port), "web", "worker_chat"]
    # honcho puts the Procfile's commands in a shell: `bookchat`/`uvicorn` from the venv.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = _start(procs, "procfile", argv, env)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc, procs.tmp / "procfile.log")
    commands = [*(" ".join(step) for step in steps), f"honcho start -p {port} web worker_chat"]
    return proc, url, commands


def _address(reader: int) -> str:
    return f"10.{(reader >> 16) & 255}.{(reader >> 8) & 255}.{reader & 255}"


class Client:
    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=2000)
        self.http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits)

    async def stack(self, url: str, reader: int, q: int) -> Sample:
        started = time.perf_counter()
        response = await self.http.post(
            f"{url}/v1/chat",
            json={"message": QUESTIONS[q % len(QUESTIONS)]},
            headers={"X-Forwarded-For": _address(reader)},
        )
        if response.status_code != 202:
            code = response.json().get("code") if response.content else ""
            return Sample(q, time.perf_counter() - started, None, ok=False,
                          error=f"{response.status_code} {code}")  # fmt: skip
        submit = time.perf_counter() - started
        events_url = response.json()["events_url"]
        return await follow_answer(self.http, f"{url}{events_url}", q, started, submit)

    async def sync(self, url: str, reader: int, q: int) -> Sample:
        started = time.perf_counter()
        response = await self.http.post(
            f"{url}/chat", json={"message": QUESTIONS[q % len(QUESTIONS)]}
        )
        total = time.perf_counter() - started
        ok = response.status_code == 200
        return Sample(q, total, total, ok=ok, error=None if ok else str(response.status_code))

    async def aclose(self) -> None:
        await self.http.aclose()


async def _ask(one: One, reader: int, q: int) -> Sample:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await one(reader, q)
    except Exception as error:
        return Sample(q, time.perf_counter() - started, None, ok=False, error=repr(error)[:120])


async def phase(
    name: str,
    one: One,
    root: int,
    readers: int,
    rounds: int,
    *,
    think: tuple[float, float] | None = None,
    seconds: float = 60.0,
) -> dict[str, Any]:
    """`readers` readers, each asking `rounds` questions back to back, all starting at once; or
    with `think` (LOW, HIGH seconds), each reads every answer for a seeded random LOW-HIGH
    seconds before the next question (starting at a random point of a first reading), for
    `seconds` (questions still open then are waited for)."""
    import random

    async def reader(i: int) -> list[Sample]:
        if think is None:
            return [await _ask(one, i, i + r) for r in range(rounds)]
        draw = random.Random(i)
        until = time.monotonic() + seconds
        await asyncio.sleep(draw.uniform(0, think[1]))
        samples, r = [], 0
        while time.monotonic() < until:
            samples.append(await _ask(one, i, i + r))
            r += 1
            await asyncio.sleep(draw.uniform(*think))
        return samples

    load_before, cpu_before = loadavg(), tree_cpu_s(root)
    started = time.perf_counter()
    samples = [s for batch in await asyncio.gather(*map(reader, range(readers))) for s in batch]
    wall = time.perf_counter() - started
    cpu = tree_cpu_s(root) - cpu_before
    ok = [s for s in samples if s.ok]
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            errors[str(s.error)] = errors.get(str(s.error), 0) + 1
    return {
        "phase": name,
        "readers": readers,
        "rounds": rounds,
        "asked": len(samples),
        "answered": len(ok),
        "errors": errors,
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(ok) / wall, 2),
        "total_s": [round(s.total_s, 4) for s in ok],
        "ttft_s": [round(s.ttft_s, 4) for s in ok if s.ttft_s is not None],
        "cpu_ms_per_answer": round(1000 * cpu / max(1, len(ok)), 1),
        "load_before": load_before,
        "load_after": loadavg(),
    }


def figures(result: dict[str, Any], alone_s: float | None) -> dict[str, Any]:
    totals, ttfts = result["total_s"], result["ttft_s"]
    out = {k: v for k, v in result.items() if k not in ("total_s", "ttft_s")}
    for label, values in (("total", totals), ("ttft", ttfts)):
        for q in (50, 95, 99):
            value = pct(values, q)
            out[f"{label}_p{q}_s"] = None if value is None else round(value, 2)
    if alone_s is not None and totals:
        over = [t - alone_s for t in totals]
        for q in (50, 95, 99):
            value = pct(over, q)
            out[f"overhead_p{q}_s"] = None if value is None else round(value, 2)
    return out


async def measure_way(
    way: str, one: One, root: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    await phase("warm-up", one, root, 1, 1)  # loads the embedder, opens the pools
    alone = await phase("alone", one, root, 1, args.alone)
    alone_s = statistics.median(alone["total_s"]) if alone["total_s"] else None
    results = [figures(alone, alone_s)]
    results.append(figures(await phase("burst", one, root, args.readers, 1), alone_s))
    spy = None
    if args.profile:
        path = args.out.with_name(f"{args.out.stem}_{way}.collapsed")
        argv = py_spy_record(path, "--pid", str(root))
        spy = await asyncio.to_thread(subprocess.Popen, argv, stdout=subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # let py-spy attach
    try:
        closed = await phase("closed", one, root, args.readers, args.rounds)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
    results.append(figures(closed, alone_s))
    if args.think_readers:
        low, high = (float(x) for x in args.think.split("-"))
        paced = await phase(
            "think", one, root, args.think_readers, 0, think=(low, high), seconds=args.think_s
        )
        results.append(figures(paced, alone_s))
    for r in results:
        r["way"] = way
        print(
            f"{way:9} {r['phase']:6} answered {r['answered']}/{r['asked']} "
            f"{r['answers_per_s']}/s p50 {r.get('total_p50_s')} p95 {r.get('total_p95_s')} "
            f"ttft p95 {r.get('ttft_p95_s')} cpu {r['cpu_ms_per_answer']} ms/answer "
            f"load {r['load_before']} -> {r['load_after']} {r['errors'] or ''}",
            flush=True,
        )
    return results


async def _measure(way: str, url: str, root: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    client = Client()
    try:

        async def one(reader: int, q: int) -> Sample:
            if way == "sync":
                return await client.sync(url, reader, q)
            return await client.stack(url, reader, q)

        return await measure_way(way, one, root, args)
    finally:
        await client.aclose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    ways = args.ways.split(",")
    report: dict[str, Any] = {
        "machine": machine(),
        "llm": {"latency_first_token_s": LATENCY_FIRST_TOKEN, "tokens_per_s": TOKENS_PER_S},
        "readers": args.readers,
        "rounds": args.rounds,
        "commands": {},
        "phases": [],
        "rss_peak_mib": {},
        "load_start": loadavg(),
    }
    with (
        throwaway_postgres("bookchat_bench") as database_url,
        bench_processes(database_url, keep=args.keep) as procs,
    ):
        llm_url = start_fake_llm(procs)
        for way in ways:
            if way == "sync":
                data = procs.tmp / "sync-data"
                index_site(data, SAMPLE_SITE, embedder="bundled")
                # Like the shipped ways: the bundled embedder, history in SQLite in its data dir.
                history = Settings(data_dir=data).effective_database_url
                upgrade_database(history)
                sync_env = {
                    **llm_env(llm_url),
                    "BOOKCHAT_EMBEDDER": "bundled",
                    "BOOKCHAT_DATABASE_URL": history,
                }
                url = start_sync_baseline(procs, data_dir=data, env=sync_env)
                root = procs.started["sync"].pid
                report["commands"][way] = [
                    "uvicorn bench.sync_baseline:app (bundled embedder, SQLite history)"
                ]
            else:
                starter = start_dev if way == "dev" else start_procfile
                proc, url, commands = starter(procs, llm_url)
                root = proc.pid
                report["commands"][way] = commands
            report["phases"] += asyncio.run(_measure(way, url, root, args))
            report["rss_peak_mib"][way] = tree_hwm_mib(root)
            procs.stop([way, "procfile-redis"] if way == "procfile" else [way])
    report["load_end"] = loadavg()
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| way | phase | answered | answers/s | p50 s | p95 s | p99 s | overhead p95 s | "
        "TTFT p50 / p95 s | CPU ms/answer | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["phases"]:
        lines.append(
            f"| {r['way']} | {r['phase']} ({r['readers']}×{r['rounds']}) | "
            f"{r['answered']}/{r['asked']} | {r['answers_per_s']} | {r.get('total_p50_s')} | "
            f"{r.get('total_p95_s')} | {r.get('total_p99_s')} | {r.get('overhead_p95_s')} | "
            f"{r.get('ttft_p50_s')} / {r.get('ttft_p95_s')} | {r['cpu_ms_per_answer']} | "
            f"{r['load_before'].split(',')[0]} → {r['load_after'].split(',')[0]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alone", type=int, default=5)
    parser.add_argument("--ways", default="dev,procfile,sync")
    parser.add_argument("--out", type=Path, default=RESULTS / "deployed_load.json")
    parser.add_argument(
        "--think-readers", type=int, default=0, help="then this many readers with think time"
    )
    parser.add_argument("--think", default="10-20", help="their reading time, LOW-HIGH seconds")
    parser.add_argument("--think-s", type=float, default=60.0, help="how long they ask")
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the way's processes in the closed phase"
    )
    parser.add_argument("--report", type=Path, help="print this results file as markdown")
    args = parser.parse_args(argv)
    if args.report:
        print(markdown(json.loads(args.report.read_text())))
        return
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed")
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
