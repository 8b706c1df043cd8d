"""Hybrid search latency of the embedded store: Qdrant Edge vs qdrant-client local mode, same
points and queries in one run, through the one VectorStore interface.

Points are synthetic (384-d random unit vectors, sparse vectors of made-up words, two sites),
so any size can be built quickly; queries filter on the site as the worker's do. "with
embedding" adds the bundled embedder's query embedding (measured on the same queries, same run).

    uv run python -m bench.store_latency --sizes 1000,10000,100000 --local-max 10000

``--rewrite N`` then re-upserts N of the points with new vectors (what incremental ingestion
does to changed chunks) and measures Edge again before and after ``maintain`` (the re-index
into a new collection that takes them into the HNSW graph).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from ingestion_jobs import sparse
from shared.vectorstore import HybridQuery, PointFilter, SparseTerms, StoredPoint, VectorStore
from shared.vectorstore.edge import EdgeStore
from shared.vectorstore.server import QdrantServerStore

DIM = 384
WORDS = [f"w{i}" for i in range(2000)]


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIM)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def points(n: int, seed: int = 0) -> list[StoredPoint]:
    """``n`` synthetic points; another ``seed`` gives the same ids with other vectors."""
    rng = random.Random(1 + seed)
    out = []
    for i in range(n):
        terms = sparse.document_vector(" ".join(rng.choices(WORDS, k=80)))
        out.append(
            StoredPoint(
                id=f"00000000-0000-4000-8000-{i:012d}",
                payload={"site": "ab"[i % 2], "path": f"docs/p{i % 500}.md", "text": "x" * 900},
                dense=unit(rng),
                sparse=SparseTerms(terms.indices, terms.values),
            )
        )
    return out


def queries(k: int) -> list[HybridQuery]:
    rng = random.Random(2)
    out = []
    for _ in range(k):
        terms = sparse.query_vector(" ".join(rng.choices(WORDS, k=5)))
        out.append(
            HybridQuery(
                dense=unit(rng),
                sparse=SparseTerms(terms.indices, terms.values),
                limit=10,
                prefetch=40,
                filter=PointFilter.where(site="a"),
            )
        )
    return out


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100)[q - 1], 2)


def measure(
    store: VectorStore, data: list[StoredPoint], asked: list[HybridQuery]
) -> dict[str, Any]:
    started = time.perf_counter()
    name = store.create("bench", dim=DIM, embedder="synthetic")
    for i in range(0, len(data), 256):
        store.upsert(name, data[i : i + 256])
    store.publish("bench", name)  # Edge: HNSW built in a child process from 5,000 points
    build_s = time.perf_counter() - started
    return {"build_s": round(build_s, 1), **search_figures(store, asked)}


def search_figures(store: VectorStore, asked: list[HybridQuery]) -> dict[str, float]:
    """Wall time of each search, one query at a time, and the CPU time of the searching
    thread: on a shared machine the wall-time tail is mostly waiting for a core, the CPU time is
    the engine's own cost."""
    store.search("bench", asked[:1])  # warm
    wall, cpu = [], []
    for query in asked:
        started, cpu_started = time.perf_counter(), time.thread_time()
        store.search("bench", [query])
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": pct(wall, 50),
        "p95_ms": pct(wall, 95),
        "cpu_p50_ms": pct(cpu, 50),
        "cpu_p95_ms": pct(cpu, 95),
    }


def measure_rewrite(
    store: VectorStore, data: list[StoredPoint], asked: list[HybridQuery], rewrite: int
) -> dict[str, Any]:
    """Search after re-upserting ``rewrite`` points, then after ``maintain``."""
    fresh = points(rewrite, seed=1)
    for i in range(0, len(fresh), 256):
        store.upsert("bench", fresh[i : i + 256])
    before = search_figures(store, asked)
    started = time.perf_counter()
    reindexed = store.maintain("bench")
    maintain_s = time.perf_counter() - started
    after = search_figures(store, asked)
    return {
        "rewritten": rewrite,
        "before_maintain": before,
        "maintain_s": round(maintain_s, 1),
        "reindexed": reindexed is not None,
        "after_maintain": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--local-max", type=int, default=10000, help="largest size for local mode")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rewrite", type=int, default=0, help="points re-upserted (Edge)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/store_latency.json"))
    args = parser.parse_args()
    asked = queries(args.queries)
    from ingestion_jobs.embedding import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.embed_query("warm up")
    texts = [" ".join(random.Random(i).choices(WORDS, k=8)) for i in range(args.queries)]
    embed_ms = [t for x in texts for t in timed(lambda x=x: embedder.embed_query(x), 1)]
    result: dict[str, Any] = {
        "command": "uv run python -m bench.store_latency " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_before": os.getloadavg(),
        "query_embedding_ms": {"p50": pct(embed_ms, 50), "p95": pct(embed_ms, 95)},
        "sizes": {},
    }
    for size in (int(s) for s in args.sizes.split(",")):
        data = points(size)
        row: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            edge = EdgeStore(Path(tmp) / "edge")
            row["edge"] = measure(edge, data, asked)
            if args.rewrite:
                row["edge_rewrite"] = measure_rewrite(edge, data, asked, min(args.rewrite, size))
            edge.close()
            if size <= args.local_max:
                local = QdrantServerStore(QdrantClient(path=str(Path(tmp) / "local")))
                row["local_mode"] = measure(local, data, asked[: max(5, args.queries // 5)])
                local.close()
        for engine in ("edge", "local_mode"):
            if engine in row:
                row[engine]["with_embedding_p50_ms"] = round(
                    row[engine]["p50_ms"] + result["query_embedding_ms"]["p50"], 2
                )
        result["sizes"][str(size)] = row
        print(size, json.dumps(row), file=sys.stderr, flush=True)
    result["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
