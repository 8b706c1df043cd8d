"""Where the queue path's CPU goes per answer, against the synchronous endpoint (issue 19).

    uv run python -m bench.queue_cpu [--concurrency 10,100] [--rounds 2] [--repeat 2]
        [--profile] [--out bench/results/queue_cpu.json]

The processes of `bench/chat_load.py` (fake LLM, API, Celery chat worker, sync baseline, a
private redis-server, a throwaway Postgres; `bench/harness.py`), and only its `sync` and
`stack` ways, alternating at each concurrency and repeated, so that both see the same
machine load. For each phase: answers/s, each process's CPU per answer (from /proc), and the
Redis commands per answer (`INFO commandstats` before and after: a machine-independent count
of the round trips the queue path makes; commands run inside a script count too).

With `--profile`, py-spy samples the sync baseline during its phases and the API and the
worker during theirs; each process's samples are attributed to parts of the path (the
first rule whose frame appears in a stack wins; `RULES`), as a share of the process's
samples and as ms of its CPU per answer. py-spy's samples are not CPU time (a thread that
waits for the CPU or the GIL is sampled too), so the shares are read as proportions only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.chat_load import QUESTIONS, Ways, run_phase
from bench.harness import (
    RESULTS,
    SAMPLE_SITE,
    bench_processes,
    copy_index,
    index_site,
    llm_env,
    loadavg,
    machine,
    start_api,
    start_chat_worker,
    start_fake_llm,
    start_sync_baseline,
)
from bench.load_models import ClosedLoop
from bench.profiling import profiling
from tests.conftest import throwaway_postgres

#: Parts of the path, by a frame that marks them (first match wins, so the order matters).
RULES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "worker": [
        (
            "metrics (shared/metrics.py, timings)",
            ("shared/metrics.py", "record_job_metrics", "_record_timings"),
        ),
        ("celery prerun/postrun signals", ("_job_context_on_start", "_metrics_on_end")),
        ("history (SQLAlchemy, asyncpg)", ("shared/history.py", "sqlalchemy/", "asyncpg/")),
        ("token relay", ("TokenRelay",)),
        ("retrieval", ("worker/retrieval.py",)),
        (
            "agent (Agents SDK, openai client)",
            ("agents/", "openai/", "worker/llm.py", "answer_question"),
        ),
        (
            "job store (shared/jobs.py)",
            ("shared/jobs.py", "shared/job_reader.py", "index_state", "index_wait"),
        ),
        ("celery/kombu (consumer, pool, ack, events)", ("celery/", "kombu/", "billiard/", "vine/")),
        ("redis-py (command sends: a task each)", ("redis/",)),
        (
            "thread hand-offs (runtime.run)",
            ("WorkerRuntime.run", "run_coroutine_threadsafe", "concurrent/futures"),
        ),
    ],
    "api": [
        ("POST /v1/chat: task send (kombu, in a thread)", ("send_task", "kombu/", "celery/")),
        ("POST /v1/chat: the rest", ("post_chat", "api/enqueue.py", "api/limits.py")),
        (
            "SSE: reading the job's stream (XREAD)",
            ("JobReader.follow", "JobReader.events", "JobStore.follow"),
        ),
        ("SSE: frames (sse_starlette)", ("sse_starlette",)),
        ("SSE: opening (job read, token)", ("job_events", "_readable_job")),
        ("FastAPI routing, pydantic", ("fastapi/routing", "fastapi/dependencies", "pydantic")),
        ("redis-py (command sends: a task each)", ("redis/",)),
        ("uvicorn, starlette", ("uvicorn/protocols", "starlette/", "httptools")),
        ("event loop (uvloop: sockets, HTTP parsing)", ("Runner.run",)),
    ],
    "sync": [
        ("history (SQLAlchemy, asyncpg)", ("shared/history.py", "sqlalchemy/", "asyncpg/")),
        ("retrieval", ("worker/retrieval.py",)),
        (
            "agent (Agents SDK, openai client)",
            ("agents/", "openai/", "worker/llm.py", "answer_question"),
        ),
        (
            "uvicorn, starlette, FastAPI",
            ("uvicorn/protocols", "starlette/", "fastapi/", "httptools"),
        ),
        ("event loop (uvloop)", ("Runner.run",)),
    ],
}


def attribute(path: Path, rules: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    """Samples per part of the path, from py-spy's raw (collapsed) output."""
    parts: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0, "shares": {}}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        name = next((n for n, marks in rules if any(m in stack for m in marks)), "other")
        parts[name] += count
    shares = {n: round(100 * c / total, 1) for n, c in parts.most_common()} if total else {}
    return {"samples": total, "shares": shares}


def command_calls(redis_url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats: dict[str, Any] = client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="10,100")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "queue_cpu.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    command = "uv run python -m bench.queue_cpu " + " ".join(sys.argv[1:] if argv is None else argv)
    runs: list[dict[str, Any]] = []

    with throwaway_postgres() as database_url, bench_processes(database_url) as procs:
        index_site(procs.tmp / "floor", SAMPLE_SITE)
        for name in ("worker", "sync"):
            copy_index(procs.tmp / "floor", procs.tmp / name)
        llm_url = start_fake_llm(procs)
        api_url = start_api(procs)
        start_chat_worker(procs, data_dir=procs.tmp / "worker", env=llm_env(llm_url))
        sync_url = start_sync_baseline(procs, data_dir=procs.tmp / "sync", env=llm_env(llm_url))
        pids = {name: pid for name, pid in procs.pids().items() if name != "redis"}
        pids["driver"] = os.getpid()

        async def go() -> None:
            ways = Ways(
                llm_url=llm_url,
                api_url=api_url,
                sync_url=sync_url,
                floor_dir=procs.tmp / "floor",
                site=SAMPLE_SITE,
                embedder="hash",
                questions=QUESTIONS,
            )
            ask = {"sync": ways.sync, "stack": ways.stack}
            profiled = {"sync": ["sync"], "stack": ["api", "worker"]}
            try:
                for name in ask:  # warm both paths: connections, imports, a first answer
                    for q in range(3):
                        await ask[name](q)
                for rep in range(args.repeat):
                    for readers in levels:
                        for name in ask:
                            before = command_calls(procs.redis_url)
                            model = ClosedLoop(rounds=args.rounds)
                            profiles: dict[str, Any] = {}
                            if args.profile:
                                with profiling(procs, profiled[name], procs.tmp) as paths:
                                    _, info = await run_phase(
                                        model, readers, ask[name], pids, len(QUESTIONS)
                                    )
                                for who, path in paths.items():
                                    profiles[who] = attribute(path, RULES[who])
                            else:
                                _, info = await run_phase(
                                    model, readers, ask[name], pids, len(QUESTIONS)
                                )
                            after = command_calls(procs.redis_url)
                            answers = max(1, info["ok"])
                            commands = {
                                k: round((v - before.get(k, 0)) / answers, 1)
                                for k, v in sorted(after.items(), key=lambda kv: -kv[1])
                                if v - before.get(k, 0) >= answers / 10
                            }
                            row = {
                                "rep": rep,
                                "readers": readers,
                                "way": name,
                                "answers_per_s": info["answers_per_s"],
                                "ok": info["ok"],
                                "requests": info["requests"],
                                "cpu_ms_per_answer": info["cpu_ms_per_answer"],
                                "load_after": info["load_after"],
                                "total": info["total"],
                                "redis_commands_per_answer": commands,
                                "profiles": profiles,
                            }
                            runs.append(row)
                            print(json.dumps(row), file=sys.stderr, flush=True)
            finally:
                await ways.aclose()

        asyncio.run(go())
    report = {
        "benchmark": "queue_cpu",
        "command": command,
        "machine": machine(),
        "loadavg_at_end": loadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
