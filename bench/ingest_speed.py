"""Ingestion speed on the Docusaurus corpus, with the real bundled embedder and an on-disk store.

    uv run python -m bench.ingest_speed [--embedder minilm|e5] [--corpus PATH]

Measures, on a private copy of the corpus and a fresh local-mode Qdrant store (as ``bookchat
ingest`` runs by default):

- a first, full ingestion: pages/s and chunks/s end to end;
- the raw embedder throughput on the very same texts (so the overhead of reading, chunking,
  sparse vectors and upserts shows);
- a re-run with nothing changed, and a re-run after one page changed;
- hybrid search latency over the store: search alone and with the query embedding.

No embedding cache here: the point is the real cost. Results go to
``bench/results/ingest_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.embedding import E5Embedder, Embedder, MiniLMEmbedder
from ingestion_jobs.indexer import chunk_text_for_embedding, index_site
from shared.vectorstore.edge import EdgeStore
from worker.retrieval import Retriever

ROOT = Path(__file__).resolve().parent
DEFAULT_CORPUS = ROOT.parent.parent / "shared" / "corpora" / "docusaurus-docs"
QUERIES = [
    "how do I deploy to GitHub Pages",
    "trailingSlash",
    "what is swizzling",
    "add a sidebar item",
    "docs:version command",
    "configure i18n locales",
    "admonitions syntax",
    "blog authors file",
]


def _timed(label: str, fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.2f}s", file=sys.stderr)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", choices=["minilm", "e5"], default="minilm")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "ingest_speed.json")
    args = parser.parse_args()
    embedder: Embedder = MiniLMEmbedder() if args.embedder == "minilm" else E5Embedder()

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(args.corpus, site)
        store = EdgeStore(Path(tmp) / "edge")
        embedder.embed_query("load the model before timing")

        def ingest() -> Any:
            return index_site(site, store=store, embedder=embedder, collection="bench")

        first, first_s = _timed("first ingestion", ingest)
        read = read_site(site)
        texts = [chunk_text_for_embedding(c) for p in read.pages for c in chunk_page(p)]
        _, raw_s = _timed(
            f"raw embedder on {len(texts)} texts", lambda: embedder.embed_passages(texts)
        )
        unchanged, unchanged_s = _timed("re-run, nothing changed", ingest)

        page = max(site.joinpath("docs").rglob("*.md*"), key=lambda p: p.stat().st_size)
        page.write_text(page.read_text() + "\n\nA new closing paragraph about benchmarks.\n")
        one_page, one_page_s = _timed(f"re-run, one page changed ({page.name})", ingest)

        retriever = Retriever(store, embedder, "bench")
        vectors = {q: embedder.embed_query(q) for q in QUERIES}
        search_only = []
        with_embedding = []
        for _ in range(5):
            for query in QUERIES:
                started = time.perf_counter()
                store.search(  # the store alone, the query already embedded
                    "bench",
                    [retriever._request(vectors[query], query, limit=5, query_filter=None)],
                )
                search_only.append(time.perf_counter() - started)
                started = time.perf_counter()
                retriever.search(query, limit=5)
                with_embedding.append(time.perf_counter() - started)
        store.close()

    def ms(values: list[float], q: float) -> float:
        return round(1000 * statistics.quantiles(values, n=100)[int(q) - 1], 2)

    result = {
        "command": "uv run python -m bench.ingest_speed " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "embedder": embedder.name,
        "corpus": str(args.corpus.name),
        "pages": first.pages_seen,
        "chunks": first.chunks_total,
        "first_ingest_s": round(first_s, 2),
        "pages_per_s": round(first.pages_seen / first_s, 2),
        "chunks_per_s": round(first.chunks_total / first_s, 2),
        "raw_embedder_s": round(raw_s, 2),
        "raw_embedder_passages_per_s": round(len(texts) / raw_s, 2),
        "pipeline_overhead_pct": round(100 * (first_s - raw_s) / raw_s, 1),
        "no_change_rerun_s": round(unchanged_s, 2),
        "no_change_rerun_embedded": unchanged.chunks_embedded,
        "one_page_change_rerun_s": round(one_page_s, 2),
        "one_page_change_embedded": one_page.chunks_embedded,
        "one_page_change_deleted": one_page.chunks_deleted,
        "hybrid_search_ms_p50": ms(search_only, 50),
        "hybrid_search_ms_p95": ms(search_only, 95),
        "search_with_query_embedding_ms_p50": ms(with_embedding, 50),
        "search_with_query_embedding_ms_p95": ms(with_embedding, 95),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
