"""Retrieval quality on the real corpora and their dev questions: ours against baselines.

    uv run python -m bench.retrieval_quality [--embedders minilm,e5] [--corpora ...]

Pipelines, all in the same run, with the same embedder:

- ``ours-hybrid``: structure-aware chunks (``chunking.chunk_page``, sized as ingestion sizes them:
  ``indexer.chunk_limits``, the embedder's own tokens within its input limit), dense + sparse
  fused by RRF in Qdrant (``worker.retrieval.Retriever``): what the product runs.
- ``est350-hybrid`` (with ``--est350``): the same, chunks bounded by 350 estimated tokens, as
  ingestion sized them before issue 33 (MiniLM truncated their tails).
- ``ours-dense``: the same chunks, dense search only (what the sparse side adds).
- ``fixed-dense``: fixed windows of 1,000 characters with 200 of overlap over each page's text,
  dense only (what structure-aware chunking adds).
- ``llamaindex-dense``: LlamaIndex's default ``SentenceSplitter`` (1024 tokens, 200 overlap),
  dense only; skipped when ``llama-index-core`` is not installed.

Scores on answerable questions (see shared/eval/README.md): hit@1, hit@5, MRR@10 by question
kind, a hit being a result whose path is expected (multi-hop: all expected paths in the top k);
``strict`` also needs the expected heading. ``decline_auroc`` says how well the top hit's dense
cosine separates answerable from unanswerable questions.

Embeddings are cached under ``bench/.cache`` keyed by model and text hash, so reruns are fast.
Results go to ``bench/results/retrieval_quality.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.documents import Chunk, Page
from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.embedding import E5Embedder, Embedder, HashEmbedder, MiniLMEmbedder
from ingestion_jobs.indexer import chunk_limits, index_chunks
from shared.passages import Passage
from shared.vectorstore import HybridQuery, VectorStore
from shared.vectorstore.edge import EdgeStore
from worker.retrieval import Retriever

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared"
CORPORA = {
    "docusaurus": (
        SHARED / "corpora" / "docusaurus-docs",
        SHARED / "eval" / "dev-questions-docusaurus.jsonl",
    ),
    "physical-ai": (
        SHARED / "corpora" / "physical-ai-book",
        SHARED / "eval" / "dev-questions-physical-ai.jsonl",
    ),
}
ANSWERABLE_EXCLUDED = {"unanswerable", "injection"}


class CachedEmbedder:
    """Wraps an embedder with an on-disk cache keyed by model name and text hash."""

    def __init__(self, inner: Embedder, cache_dir: Path) -> None:
        self.inner = inner
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / ".gitignore").write_text("*\n")  # a cache, never committed
        self._db = sqlite3.connect(cache_dir / "embeddings.sqlite")
        self._db.execute("CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, vec BLOB)")
        self.computed = 0
        self.compute_seconds = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int | None:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.inner.name}|{kind}|{text}".encode()).hexdigest()

    def _cached(
        self, kind: str, texts: Sequence[str], compute: Callable[[list[str]], list[list[float]]]
    ) -> list[list[float]]:
        keys = [self._key(kind, t) for t in texts]
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT k, vec FROM v WHERE k IN ({','.join('?' * len(part))})", part
            ).fetchall()
            found.update({k: np.frombuffer(v, dtype=np.float32).tolist() for k, v in rows})
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            started = time.perf_counter()
            vectors = compute([texts[i] for i in missing])
            self.compute_seconds += time.perf_counter() - started
            self.computed += len(missing)
            for i, vector in zip(missing, vectors, strict=True):
                found[keys[i]] = vector
                self._db.execute(
                    "INSERT OR REPLACE INTO v VALUES (?, ?)",
                    (keys[i], np.asarray(vector, dtype=np.float32).tobytes()),
                )
            self._db.commit()
        return [found[k] for k in keys]

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self._cached("p", texts, self.inner.embed_passages)

    def embed_query(self, text: str) -> list[float]:
        return self._cached("q", [text], lambda ts: [self.inner.embed_query(ts[0])])[0]


def _page_text(page: Page) -> list[tuple[str, str | None]]:
    """(text, heading) runs of a page in order, for the baseline chunkers."""
    return [(section.text, section.heading or page.title) for section in page.sections]


def _baseline_chunk(page: Page, ordinal: int, text: str, heading: str | None) -> Chunk:
    return Chunk(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"baseline|{page.path}|{ordinal}")),
        path=page.path,
        url=page.url,
        heading=heading or page.title,
        title=page.title,
        breadcrumb=(),
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        page_hash=page.content_hash,
    )


def fixed_chunks(page: Page, size: int = 1000, overlap: int = 200) -> list[Chunk]:
    """Fixed character windows over the page's whole text; a window's heading is the one of the
    section it starts in (so the strict score is defined)."""
    text = ""
    starts: list[tuple[int, str | None]] = []
    for section_text, heading in _page_text(page):
        starts.append((len(text), heading))
        text += section_text + "\n\n"
    chunks = []
    for ordinal, start in enumerate(range(0, max(len(text) - overlap, 1), size - overlap)):
        heading = next((h for s, h in reversed(starts) if s <= start), page.title)
        window = text[start : start + size].strip()
        if window:
            chunks.append(_baseline_chunk(page, ordinal, window, heading))
    return chunks


LLAMAINDEX_NOTE = ""


def _llamaindex_splitter() -> Any:
    """LlamaIndex's default SentenceSplitter; if its nltk sentence tokenizer cannot open its
    bundled data (nltk refuses the hard-linked files uv installs), the same splitter with
    LlamaIndex's own fallback sentence regex."""
    global LLAMAINDEX_NOTE
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.node_parser.text.utils import split_by_regex

    splitter = SentenceSplitter()
    try:
        splitter.split_text("A sentence of words. " * 1000)  # long enough to need the tokenizer
        LLAMAINDEX_NOTE = "SentenceSplitter() defaults"
    except PermissionError:
        splitter = SentenceSplitter(
            chunking_tokenizer_fn=split_by_regex("[^,.;。？！]+[,.;。？！]?")
        )
        LLAMAINDEX_NOTE = "SentenceSplitter() defaults, sentence regex instead of nltk punkt"
    return splitter


def llamaindex_chunks(page: Page, splitter: Any) -> list[Chunk]:
    text = "\n\n".join(t for t, _ in _page_text(page))
    starts = []
    offset = 0
    for section_text, heading in _page_text(page):
        starts.append((offset, heading))
        offset += len(section_text) + 2
    chunks = []
    position = 0
    for ordinal, piece in enumerate(splitter.split_text(text)):
        found = text.find(piece[:80], position)
        position = found if found >= 0 else position
        heading = next((h for s, h in reversed(starts) if s <= position), page.title)
        chunks.append(_baseline_chunk(page, ordinal, piece, heading))
    return chunks


@dataclass
class Question:
    id: str
    question: str
    kind: str
    paths: list[str]
    headings: list[str]


def load_questions(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            questions.append(
                Question(
                    q["id"], q["question"], q["kind"], q["expected_paths"], q["expected_headings"]
                )
            )
    return questions


def _norm(heading: str | None) -> str:
    return (heading or "").replace("`", "").strip().lower()


def score(question: Question, ranked: Sequence[tuple[str, str]]) -> dict[str, float]:
    """hit@1, hit@5, MRR@10 by path, and the same with path+heading (``strict_*``)."""
    expected = list(zip(question.paths, (_norm(h) for h in question.headings), strict=True))
    ranked = [(p, _norm(h)) for p, h in ranked[:10]]
    multi = question.kind == "multi-hop"

    def hit(k: int, strict: bool) -> float:
        top = ranked[:k]
        got = [any(p == ep and (not strict or h == eh) for p, h in top) for ep, eh in expected]
        return float(all(got) if multi else any(got))

    def rr(strict: bool) -> float:
        for rank, (p, h) in enumerate(ranked, 1):
            if any(p == ep and (not strict or h == eh) for ep, eh in expected):
                return 1.0 / rank
        return 0.0

    return {
        "hit@1": hit(1, False),
        "hit@5": hit(5, False),
        "mrr@10": rr(False),
        "strict_hit@1": hit(1, True),
        "strict_hit@5": hit(5, True),
        "strict_mrr@10": rr(True),
    }


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def summarise(rows: list[tuple[Question, dict[str, float]]]) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, float]]] = defaultdict(list)
    for question, metrics in rows:
        by_kind[question.kind].append(metrics)
        by_kind["all"].append(metrics)
    return {
        kind: {"n": len(ms)} | {m: round(statistics.fmean(x[m] for x in ms), 3) for m in ms[0]}
        for kind, ms in sorted(by_kind.items())
    }


def run_corpus(
    corpus: str,
    embedder: CachedEmbedder,
    store: VectorStore,
    *,
    baselines: bool = True,
    est350: bool = False,
) -> dict[str, Any]:
    site_dir, questions_file = CORPORA[corpus]
    read = read_site(site_dir)
    questions = load_questions(questions_file)
    max_tokens, count_tokens = chunk_limits(embedder)
    chunk_sets: dict[str, dict[str, list[Chunk]]] = {
        "ours": {
            p.path: chunk_page(p, site=corpus, max_tokens=max_tokens, count_tokens=count_tokens)
            for p in read.pages
        },
    }
    if est350:
        chunk_sets["est350"] = {p.path: chunk_page(p, site=corpus) for p in read.pages}
    if baselines:
        chunk_sets["fixed"] = {p.path: fixed_chunks(p) for p in read.pages}
        try:
            splitter = _llamaindex_splitter()
        except ImportError:
            print("  llama-index-core not installed: skipping its baseline", file=sys.stderr)
        else:
            chunk_sets["llamaindex"] = {p.path: llamaindex_chunks(p, splitter) for p in read.pages}

    collections = {}
    for name, chunks in chunk_sets.items():
        alias = f"{corpus}-{name}-{embedder.name}".replace(":", "_")
        started = time.perf_counter()
        report = index_chunks(chunks, store=store, embedder=embedder, collection=alias, site=corpus)
        print(
            f"  {corpus}/{name}: {report.chunks_total} chunks indexed "
            f"in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        collections[name] = (alias, report.chunks_total)

    def dense_only(alias: str) -> Callable[[str], list[Passage]]:
        def search(query: str) -> list[Passage]:
            vector = embedder.embed_query(query)
            norm = float(np.linalg.norm(vector)) or 1.0
            dense = HybridQuery(dense=vector, sparse=None, limit=10, prefetch=10)
            return [
                Passage(
                    chunk_id=hit.id,
                    path=hit.payload["path"],
                    url="",
                    heading=hit.payload["heading"],
                    title="",
                    score=hit.score,  # RRF over the one dense list: rank only
                    dense_score=float(np.dot(vector, hit.dense or vector)) / norm,
                    text="",
                )
                for hit in store.search(alias, [dense])[0]
            ]

        return search

    retriever = Retriever(store, embedder, collections["ours"][0])
    pipelines: dict[str, Callable[[str], list[Passage]]] = {
        "ours-hybrid": lambda q: retriever.search(q, limit=10),
        "ours-dense": dense_only(collections["ours"][0]),
    }
    if "est350" in collections:
        est350 = Retriever(store, embedder, collections["est350"][0])
        pipelines["est350-hybrid"] = lambda q: est350.search(q, limit=10)
        pipelines["est350-dense"] = dense_only(collections["est350"][0])
    if "fixed" in collections:
        pipelines["fixed-dense"] = dense_only(collections["fixed"][0])
    if "llamaindex" in collections:
        pipelines["llamaindex-dense"] = dense_only(collections["llamaindex"][0])

    results: dict[str, Any] = {
        "pages": len(read.pages),
        "read_errors": len(read.errors),
        "chunks": {name: n for name, (_, n) in collections.items()},
        "llamaindex_splitter": LLAMAINDEX_NOTE,
        "pipelines": {},
    }
    for name, search in pipelines.items():
        rows = []
        top_cosines: dict[bool, list[float]] = {True: [], False: []}
        misses = []
        latencies = []
        for question in questions:
            embedder.embed_query(question.question)  # warm the cache: time only the search
            started = time.perf_counter()
            hits = search(question.question)
            latencies.append(time.perf_counter() - started)
            answerable = question.kind not in ANSWERABLE_EXCLUDED
            top = max((h.dense_score or 0.0 for h in hits), default=0.0)
            top_cosines[answerable].append(top)
            if answerable:
                metrics = score(question, [(h.path, h.heading) for h in hits])
                rows.append((question, metrics))
                if not metrics["hit@5"]:
                    misses.append(
                        {
                            "id": question.id,
                            "question": question.question,
                            "expected": question.paths,
                            "got": [h.path for h in hits[:5]],
                        }
                    )
        results["pipelines"][name] = {
            "scores": summarise(rows),
            "decline_auroc_top_cosine": auroc(top_cosines[True], top_cosines[False]),
            "search_ms_p50": round(1000 * statistics.median(latencies), 2),
            "misses_at_5": misses,
        }
    return results


def make_embedder(name: str) -> Embedder:
    factories: dict[str, Callable[[], Embedder]] = {
        "minilm": MiniLMEmbedder,
        "e5": E5Embedder,
        "hash": HashEmbedder,
    }
    return factories[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedders", default="minilm,e5")
    parser.add_argument("--corpora", default="docusaurus,physical-ai")
    parser.add_argument(
        "--baselines",
        default="minilm",
        help="embedders to run the baselines with too (comma-separated; 'all' for every one)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "retrieval_quality.json")
    parser.add_argument(
        "--est350", action="store_true", help="also chunks of 350 estimated tokens (before 33)"
    )
    args = parser.parse_args()

    out: dict[str, Any] = {
        "command": "uv run python -m bench.retrieval_quality " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "results": {},
    }
    for embedder_name in args.embedders.split(","):
        embedder = CachedEmbedder(make_embedder(embedder_name), ROOT / ".cache")
        store = EdgeStore(Path(tempfile.mkdtemp(prefix="bench-quality-")))
        out["results"][embedder_name] = {"model": embedder.name}
        for corpus in args.corpora.split(","):
            print(f"{embedder_name} on {corpus}", file=sys.stderr)
            out["results"][embedder_name][corpus] = run_corpus(
                corpus,
                embedder,
                store,
                baselines=args.baselines == "all" or embedder_name in args.baselines.split(","),
                est350=args.est350,
            )
        out["results"][embedder_name]["passages_embedded_uncached"] = embedder.computed
        if embedder.computed:
            out["results"][embedder_name]["passages_per_s_uncached"] = round(
                embedder.computed / embedder.compute_seconds, 2
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for embedder_name, per in out["results"].items():
        for corpus, res in per.items():
            if not isinstance(res, dict):
                continue
            for name, pipe in res["pipelines"].items():
                a = pipe["scores"]["all"]
                print(
                    f"{embedder_name:7} {corpus:12} {name:17} hit@1 {a['hit@1']:.3f} "
                    f"hit@5 {a['hit@5']:.3f} mrr@10 {a['mrr@10']:.3f} "
                    f"strict@5 {a['strict_hit@5']:.3f} auroc {pipe['decline_auroc_top_cosine']}"
                )


if __name__ == "__main__":
    main()
