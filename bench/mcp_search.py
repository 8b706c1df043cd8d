"""`search_docs` over MCP against `POST /v1/retrieve`, on the shipped `bookchat dev`.

Starts the README's command unmodified (`bookchat dev --site examples/sample-site --port P`,
embedded default: the bundled embedder, Qdrant Edge, SQLite, its own redis-server; only the
per-IP rate limit off) in a fresh data dir, waits for its first index, then asks the same
queries both ways, interleaved (so load drifts hit both alike): the baseline
`POST /v1/retrieve`, and `search_docs` through the official MCP SDK's client over streamable
HTTP (`/mcp`, one session for the run). Both run a retrieve job on the chat queue; MCP adds
its JSON-RPC framing and the SDK's validation.

    uv run python -m bench.mcp_search --rounds 100

Writes bench/results/mcp_search.json (latencies in ms, the load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from bench.harness import RESULTS, ROOT, SAMPLE_SITE, free_port, loadavg, machine

QUERIES = [
    "home pose",
    "How do I install it?",
    "soft limits",
    "collision detection threshold",
    "speed and acceleration limits",
    "first move",
    "emergency stop input",
    "trajectory planning",
]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": _pct(values, 0.50),
        "p95_ms": _pct(values, 0.95),
        "mean_ms": round(statistics.fmean(values), 1),
    }


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if http.post("/v1/retrieve", json={"query": "ready?"}).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
    raise RuntimeError(f"bookchat dev did not answer; see {log}")


async def _measure(base: str, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"retrieve": [], "mcp_search_docs": []}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http, Client(f"{base}/mcp") as mcp:
        for n in range(rounds):
            query = QUERIES[n % len(QUERIES)]
            started = time.perf_counter()
            response = await http.post("/v1/retrieve", json={"query": query, "limit": 5})
            times["retrieve"].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            started = time.perf_counter()
            result = await mcp.call_tool("search_docs", {"query": query, "limit": 5})
            times["mcp_search_docs"].append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        log = Path(tmp) / "dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKCHAT_")}
        env["BOOKCHAT_DATA_DIR"] = str(Path(tmp) / "data")
        # The one setting changed: the per-IP limit (30 a minute, shared by both ways in)
        # would stop the run after 15 rounds.
        env["BOOKCHAT_RATE_LIMIT_IP_PER_MINUTE"] = "0"
        command = ["bookchat", "dev", "--site", str(SAMPLE_SITE), "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *command[1:]],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(base, process, log)
            load_before = loadavg()
            times = asyncio.run(_measure(base, args.rounds))
            load_after = loadavg()
        finally:
            process.terminate()
            process.wait(timeout=60)
    result: dict[str, Any] = {
        "command": " ".join(command),
        "settings": {"BOOKCHAT_RATE_LIMIT_IP_PER_MINUTE": "0"},
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        **{name: _summary(values) for name, values in times.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mcp_search.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
