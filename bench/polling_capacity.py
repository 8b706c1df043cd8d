"""Polling capacity of one API process: job-status reads per second, long-polls and SSE streams
held open at once, and the memory each stream costs.

    uv run python -m bench.polling_capacity [--streams 500,1000,2000] [--longpolls 100,500,1000]

One uvicorn API process (uvloop, httptools) over real Redis (a dedicated db, flushed) and a
throwaway Postgres database. The jobs are written straight into the job store, as a worker would.

- `get`: `wrk` (apt package) hammers `GET /v1/jobs/{id}` on a finished job for `--seconds`
  with 64 connections: reads per second and latency percentiles (wrk's own).
- `longpoll`: N clients hold `GET /v1/jobs/{id}?wait=30` on queued jobs; then every job gets a
  progress event; reported: how many were held, and the wake latency (change to response).
- `sse`: N clients open `GET /v1/jobs/{id}/events` on queued jobs and hold them past one
  heartbeat (15 s); reported: how many stayed open, the API's RSS growth per stream, then the
  time for `done` to reach every stream after the jobs finish.

The load generator (httpx) shares the 2 cores with the API; the load is recorded with each
figure. Results: `bench/results/polling_capacity.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.harness import RESULTS, SECRET, bench_processes, load, machine, rss_kib, start_api
from bench.load_report import pct
from tests.conftest import throwaway_postgres


class Jobs:
    """Writes jobs as the worker would, and hands out their readable URLs."""

    def __init__(self, redis_url: str) -> None:
        from shared.jobs import JobStore
        from shared.redis_client import make_redis

        self.store = JobStore(
            make_redis(redis_url, max_connections=64, wait_for_connection_s=30), ttl_s=3600
        )

    async def new(self) -> tuple[str, str]:
        """A queued chat job; returns (id, the query string that reads it)."""
        from shared.access_tokens import issue_stream_token
        from shared.jobs import JobKind

        session_id = str(uuid.uuid4())
        job = await self.store.create(JobKind.CHAT, session_id=session_id, meta={})
        token = issue_stream_token(SECRET.encode(), job.id, expires_at=job.created_at + 3600)
        return job.id, f"token={token}"

    async def aclose(self) -> None:
        await self.store.redis.aclose()


def wrk(url: str, *, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = {
        p: m.group(1) for p in ("50%", "90%", "99%") if (m := re.search(rf"{p}\s+(\S+)", out))
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(rps.group(1)) if rps else None,
        "latency": latency,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "connections": connections,
        "seconds": seconds,
    }


async def longpolls(api: str, jobs: Jobs, n: int) -> dict[str, Any]:
    created = [await jobs.new() for _ in range(n)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        changed_at: list[float] = []

        async def poll(job_id: str, query: str) -> tuple[int, float]:
            response = await http.get(f"{api}/v1/jobs/{job_id}?{query}&wait=30")
            return response.status_code, time.perf_counter()

        tasks = [asyncio.create_task(poll(j, q)) for j, q in created]
        await asyncio.sleep(3 + n / 200)  # let every long-poll reach its blocking read
        early = sum(t.done() for t in tasks)
        load_held = load()
        start = time.perf_counter()
        await asyncio.gather(*(jobs.store.set_progress(j, {"step": "bench"}) for j, _ in created))
        changed_at.append(time.perf_counter() - start)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r for r in results if isinstance(r, tuple) and r[0] == 200]
    wake = [(t - start) * 1000 for _, t in ok]
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 200)]
    return {
        "held": n - early,
        "returned_before_change": early,
        "ok_after_change": len(ok),
        "failed": len(failures),
        "failure_examples": sorted({repr(f)[:120] for f in failures})[:3],
        "writes_took_ms": round(changed_at[0] * 1000, 1),
        "wake_p50_ms": _r(pct(wake, 50)),
        "wake_p95_ms": _r(pct(wake, 95)),
        "load_while_held": load_held,
    }


async def sse_streams(api: str, api_pid: int, jobs: Jobs, n: int, hold_s: float) -> dict[str, Any]:
    created = [await jobs.new() for _ in range(n)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=n)
    first = asyncio.Event()
    opened = 0
    rss_before = rss_kib(api_pid)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=40), limits=limits) as http:

        async def follow(job_id: str, query: str) -> dict[str, Any]:
            nonlocal opened
            seen: dict[str, Any] = {"pings": 0, "done_at": None}
            async with http.stream("GET", f"{api}/v1/jobs/{job_id}/events?{query}") as stream:
                if stream.status_code != 200:
                    seen["status"] = stream.status_code
                    return seen
                event = ""
                async for line in stream.aiter_lines():
                    if line.startswith(":"):
                        seen["pings"] += 1
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line == "" and event:
                        if event == "status" and "opened" not in seen:
                            seen["opened"] = True
                            opened += 1
                            if opened == n:
                                first.set()
                        if event in ("done", "error"):
                            seen["done_at"] = time.perf_counter()
                            seen["last"] = event
                            return seen
                        event = ""
            return seen

        tasks = [asyncio.create_task(follow(j, q)) for j, q in created]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), timeout=60 + n / 20)
        all_opened = opened
        await asyncio.sleep(hold_s)
        rss_held = rss_kib(api_pid)
        load_held = load()
        still_open = sum(not t.done() for t in tasks)
        start = time.perf_counter()
        await asyncio.gather(*(jobs.store.succeed(j, {"answer": "bench"}) for j, _ in created))
        results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r for r in results if isinstance(r, dict) and r.get("last") == "done"]
    delivered = [(r["done_at"] - start) * 1000 for r in ok]
    failures = [r for r in results if not (isinstance(r, dict) and r.get("last") == "done")]
    return {
        "streams": n,
        "opened": all_opened,
        "open_after_hold": still_open,
        "hold_s": hold_s,
        "got_heartbeat": sum(1 for r in ok if r["pings"] > 0),
        "done_delivered": len(ok),
        "failed": len(failures),
        "failure_examples": sorted({repr(f)[:160] for f in failures})[:3],
        "done_p50_ms": _r(pct(delivered, 50)),
        "done_p95_ms": _r(pct(delivered, 95)),
        "api_rss_before_mib": round(rss_before / 1024, 1),
        "api_rss_held_mib": round(rss_held / 1024, 1),
        "kib_per_stream": round((rss_held - rss_before) / max(1, still_open), 1),
        "load_while_held": load_held,
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--longpolls", default="100,500,1000")
    parser.add_argument("--streams", default="500,1000,2000")
    parser.add_argument("--hold", type=float, default=16.0, help="seconds to hold the streams")
    parser.add_argument("--api-args", default="")
    parser.add_argument("--out", type=Path, default=RESULTS / "polling_capacity.json")
    args = parser.parse_args(argv)
    command = "uv run python -m bench.polling_capacity " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    report: dict[str, Any] = {
        "benchmark": "polling_capacity",
        "command": command,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "api": f"uvicorn --workers 1 {args.api_args}".strip(),
    }
    with throwaway_postgres() as database_url, bench_processes(database_url) as procs:
        api = start_api(procs, extra=args.api_args.split())
        pid = procs.started["api"].pid

        async def go() -> None:
            jobs = Jobs(procs.redis_url)
            try:
                job_id, query = await jobs.new()
                await jobs.store.succeed(job_id, {"answer": "bench"})
                url = f"{api}/v1/jobs/{job_id}?{query}"
                report["get"] = {
                    "load_before": load(),
                    **wrk(url, seconds=args.seconds, connections=64),
                }
                print("get", report["get"], file=sys.stderr)
                report["get_wait"] = {
                    "load_before": load(),
                    **wrk(f"{url}&wait=5", seconds=args.seconds, connections=64),
                    "note": "?wait=5 on a finished job: the long-poll path, answered at once",
                }
                print("get_wait", report["get_wait"], file=sys.stderr)
                report["longpoll"] = []
                for n in [int(x) for x in args.longpolls.split(",") if x]:
                    result = await longpolls(api, jobs, n)
                    print("longpoll", n, result, file=sys.stderr)
                    report["longpoll"].append({"clients": n, **result})
                report["sse"] = []
                for n in [int(x) for x in args.streams.split(",") if x]:
                    result = await sse_streams(api, pid, jobs, n, args.hold)
                    print("sse", n, result, file=sys.stderr)
                    report["sse"].append(result)
            finally:
                await jobs.aclose()

        asyncio.run(go())
        report["api_log_tail"] = procs.log("api")[-1500:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
