"""Retrieval latency: `Retriever.search` (query embedding included) at the corpus size, 10x and
100x, with the local Qdrant store, for the hash embedder and the bundled model.

    uv run python -m bench.retrieval_latency [--embedders hash,minilm] [--scales 1,10,100]

The corpus is /work/shared/corpora/docusaurus-docs (read and chunked as `bookchat ingest` does).
Passage vectors come from `bench/retrieval_quality.py`'s on-disk cache when present (so the
bundled model's index takes seconds, not minutes); queries are always embedded for real, inside
the timed call, as the agent's tool does. The queries are the corpus's dev questions.

10x and 100x add synthetic chunks: copies of the real points under new ids with their dense
vectors perturbed (Gaussian noise, renormalised) and the same sparse vectors and payloads, so
the search does the work of a corpus that size.

Server mode is not measured: no PyPI package here ships the Qdrant server binary (only clients,
integrations and `qdrant-edge-py`, an embedded engine), and nothing else can be downloaded.
Results: `bench/results/retrieval_latency.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from bench.chat_load import RESULTS, load, machine, pct
from bench.retrieval_quality import CORPORA, CachedEmbedder, load_questions, make_embedder
from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.indexer import index_chunks
from shared.vectorstore import DENSE, resolve_alias
from worker.retrieval import Retriever

CACHE = Path(__file__).resolve().parent / ".cache"


def grow(client: QdrantClient, collection: str, factor: int, rng: np.random.Generator) -> int:
    """Adds (factor - 1) perturbed copies of every point; returns the new point count."""
    physical = resolve_alias(client, collection) or collection
    originals: list[models.Record] = []
    offset = None
    while True:
        page, offset = client.scroll(
            physical, limit=512, offset=offset, with_payload=True, with_vectors=True
        )
        originals += page
        if offset is None:
            break
    batch: list[models.PointStruct] = []
    for _ in range(factor - 1):
        for point in originals:
            vectors = dict(point.vector) if isinstance(point.vector, dict) else {}
            dense = np.asarray(vectors[DENSE], dtype=np.float32)
            noisy = dense + rng.normal(0, 0.05, dense.shape).astype(np.float32)
            vectors[DENSE] = (noisy / np.linalg.norm(noisy)).tolist()
            batch.append(
                models.PointStruct(id=str(uuid.uuid4()), vector=vectors, payload=point.payload)
            )
            if len(batch) >= 1000:
                client.upsert(physical, points=batch, wait=True)
                batch = []
    if batch:
        client.upsert(physical, points=batch, wait=True)
    return client.count(physical).count


def time_searches(retriever: Retriever, queries: list[str], repeat: int) -> dict[str, Any]:
    for query in queries[:3]:
        retriever.search(query, limit=6)  # warm
    times = []
    for _ in range(repeat):
        for query in queries:
            started = time.perf_counter()
            retriever.search(query, limit=6)
            times.append((time.perf_counter() - started) * 1000)
    return {
        "searches": len(times),
        "p50_ms": round(pct(times, 50) or 0, 2),
        "p95_ms": round(pct(times, 95) or 0, 2),
        "mean_ms": round(statistics.fmean(times), 2),
    }


def time_embedding(embedder: Any, queries: list[str]) -> dict[str, Any]:
    embedder.embed_query(queries[0])
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed_query(query)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(pct(times, 50) or 0, 2), "p95_ms": round(pct(times, 95) or 0, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedders", default="hash,minilm")
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_latency.json")
    args = parser.parse_args(argv)
    site_dir, questions_file = CORPORA["docusaurus"]
    queries = [q.question for q in load_questions(questions_file)]
    pages = read_site(site_dir).pages
    chunks = {p.path: chunk_page(p, site="docusaurus") for p in pages}
    report: dict[str, Any] = {
        "benchmark": "retrieval_latency",
        "command": "uv run python -m bench.retrieval_latency "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "corpus": {
            "site": str(site_dir),
            "pages": len(pages),
            "chunks": sum(len(c) for c in chunks.values()),
            "queries": len(queries),
        },
        "store": "qdrant-client local mode (on disk), hybrid dense+sparse RRF, limit 6",
        "server_mode": "not measured: no PyPI package ships the Qdrant server binary",
        "results": {},
    }
    rng = np.random.default_rng(7)
    for name in args.embedders.split(","):
        inner = make_embedder(name)
        cached = CachedEmbedder(inner, CACHE)
        with tempfile.TemporaryDirectory(prefix="bookchat-retrieval-") as tmp:
            client = QdrantClient(path=tmp)
            collection = f"latency-{name}"
            started = time.perf_counter()
            index_chunks(
                chunks,
                client=client,
                embedder=cached,
                collection=collection,
                site="docusaurus",
            )
            index_s = time.perf_counter() - started
            # Queries embedded for real on every call, not from the cache.
            retriever = Retriever(client, inner, collection)
            rows: dict[str, Any] = {
                "index_s": round(index_s, 1),
                "embed_query": time_embedding(inner, queries),
            }
            grown_to = 1
            for scale in sorted(int(s) for s in args.scales.split(",")):
                if scale > grown_to:
                    started = time.perf_counter()
                    # grow from the original size: copies already added count too
                    physical = resolve_alias(client, collection) or collection
                    base = client.count(physical).count // grown_to
                    points = grow(client, collection, scale // grown_to, rng)
                    print(
                        f"  {name}: grown to {points} points "
                        f"in {time.perf_counter() - started:.0f}s",
                        file=sys.stderr,
                    )
                    grown_to = scale
                    assert points >= base * scale * 0.99
                physical = resolve_alias(client, collection) or collection
                result = {
                    "points": client.count(physical).count,
                    "load_before": load(),
                    **time_searches(retriever, queries, args.repeat),
                }
                result["load_after"] = load()
                rows[f"x{scale}"] = result
                print(f"  {name} x{scale}: {result}", file=sys.stderr)
            client.close()
        report["results"][name] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
