"""Ingestion throughput against the embedder's own throughput on the same texts, in one run.

    uv run python -m bench.ingest_throughput [--site PATH] [--embedder bundled|hash]
        [--profile]

On the docusaurus corpus (read in place, never copied) and a fresh index each time:

- `embedder`: the embedder `bookchat ingest` builds (`get_embedder`, same settings) embedding
  the very texts ingestion embeds (every chunk's `chunk_text_for_embedding`) in one call,
  model loaded beforehand. Measured before and after the ingestions; its mean is the baseline;
- `cli`: `bookchat ingest SITE` end to end in its own process, into an empty data directory:
  start-up, imports and model load included, as a person runs it;
- `in-process`: `index_site` in this process into a fresh store (model already loaded): the
  pipeline alone (reading, chunking, sparse vectors, embedding in upsert batches, upserts, the
  index build), without the process start.

Ratio = chunks/s of an ingestion / chunks/s of the embedder (the goal of issue 19: >= 0.9), by
wall time and by CPU time (user + system, all threads and child processes): on a shared machine
the wall time of two passes over the same texts can differ 2x, their CPU time much less.
With `--profile`, py-spy records the in-process ingestion (a separate pass, not timed against
the baseline) and the top frames go into the results. Results:
`bench/results/ingest_throughput.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import DOCUSAURUS_SITE, PY, RESULTS, ROOT, loadavg, machine, rss_kib
from bench.profiling import py_spy_record, top_frames


def texts_of(site: Path) -> list[str]:
    """The texts ingestion embeds for `site`: every chunk, as the indexer prepares it."""
    from ingestion_jobs.chunking import chunk_page
    from ingestion_jobs.docusaurus import read_site
    from ingestion_jobs.indexer import chunk_text_for_embedding

    read = read_site(site)
    return [chunk_text_for_embedding(c) for p in read.pages for c in chunk_page(p)]


def settings_for(data_dir: Path, embedder: str, site: Path) -> Any:
    from shared.settings import EmbedderKind, Settings

    return Settings(data_dir=data_dir, embedder=EmbedderKind(embedder), site_dir=site)


def children_cpu_s() -> float:
    """CPU time of this process's waited-for children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_embedder(embedder: Any, texts: list[str]) -> dict[str, Any]:
    load_before = loadavg()
    cpu_before = time.process_time()
    started = time.perf_counter()
    embedder.embed_passages(texts)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 4),
        "cpu_s": round(time.process_time() - cpu_before, 4),
        "chunks_per_s": round(len(texts) / seconds, 2),
        "load_before": load_before,
        "load_after": loadavg(),
    }


def timed_cli(site: Path, embedder: str, tmp: Path) -> dict[str, Any]:
    """`bookchat ingest SITE` in its own process into a fresh data directory."""
    data_dir = tmp / "cli"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    env.update({"BOOKCHAT_DATA_DIR": str(data_dir), "BOOKCHAT_EMBEDDER": embedder})
    bookchat = shutil.which("bookchat", path=str(Path(PY).parent)) or "bookchat"
    load_before = loadavg()
    cpu_before = children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(
        [bookchat, "ingest", str(site)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    cpu_s = children_cpu_s() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"bookchat ingest failed:\n{proc.stderr[-3000:]}")
    summary = [line for line in proc.stderr.splitlines() if line.startswith("pages:")]
    return {
        "seconds": round(seconds, 4),
        "cpu_s": round(cpu_s, 4),
        "summary": summary[-1] if summary else proc.stderr[-300:],
        "load_before": load_before,
        "load_after": loadavg(),
    }


def timed_in_process(site: Path, embedder: Any, data_dir: Path) -> dict[str, Any]:
    """`index_site` into a fresh store, in this process."""
    from ingestion_jobs.indexer import index_site
    from shared.vectorstore import open_store

    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings_for(data_dir, "hash", site))
    load_before = loadavg()
    cpu_before = time.process_time() + children_cpu_s()
    started = time.perf_counter()
    try:
        report = index_site(site, store=store, embedder=embedder, collection="bench")
    finally:
        store.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 4),
        "cpu_s": round(time.process_time() + children_cpu_s() - cpu_before, 4),
        "chunks": report.chunks_total,
        "load_before": load_before,
        "load_after": loadavg(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=DOCUSAURUS_SITE)
    parser.add_argument("--embedder", choices=["bundled", "hash"], default="bundled")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest_throughput.json")
    args = parser.parse_args(argv)
    command = "uv run python -m bench.ingest_throughput " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    from ingestion_jobs.embedding import get_embedder

    measured = machine()
    texts = texts_of(args.site)
    report: dict[str, Any] = {
        "benchmark": "ingest_throughput",
        "command": command,
        "machine": measured,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "site": args.site.name,
        "chunks": len(texts),
        "characters": sum(len(t) for t in texts),
    }
    with tempfile.TemporaryDirectory(prefix="bookchat-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        embedder = get_embedder(settings_for(tmp / "unused", args.embedder, args.site))
        embedder.embed_passages(texts[:8])  # load the model before timing
        report["embedder"] = embedder.name
        runs: dict[str, Any] = {}
        print(f"{len(texts)} chunks; embedder {embedder.name}", file=sys.stderr)
        runs["embedder_1"] = timed_embedder(embedder, texts)
        print("embedder", runs["embedder_1"], file=sys.stderr)
        runs["cli"] = timed_cli(args.site, args.embedder, tmp)
        print("cli", runs["cli"], file=sys.stderr)
        runs["in_process"] = timed_in_process(args.site, embedder, tmp / "in-process")
        print("in-process", runs["in_process"], file=sys.stderr)
        runs["embedder_2"] = timed_embedder(embedder, texts)
        print("embedder", runs["embedder_2"], file=sys.stderr)
        report["rss_mib_bench_process"] = round(rss_kib(os.getpid()) / 1024, 1)
        baseline_s = (runs["embedder_1"]["seconds"] + runs["embedder_2"]["seconds"]) / 2
        chunks = runs["in_process"]["chunks"]
        if chunks != len(texts):
            print(f"warning: index holds {chunks} chunks, {len(texts)} texts", file=sys.stderr)
        report["runs"] = runs
        baseline_cpu = (runs["embedder_1"]["cpu_s"] + runs["embedder_2"]["cpu_s"]) / 2
        # CPU time is what other processes on a shared machine disturb least: the fairer ratio.
        report["cpu_ratios"] = {
            "cli_vs_embedder": round(baseline_cpu / runs["cli"]["cpu_s"], 3),
            "in_process_vs_embedder": round(baseline_cpu / runs["in_process"]["cpu_s"], 3),
            "embedder_2_vs_embedder_1": round(
                runs["embedder_1"]["cpu_s"] / max(1e-4, runs["embedder_2"]["cpu_s"]), 3
            ),
        }
        report["ratios"] = {
            "cli_vs_embedder": round(baseline_s / runs["cli"]["seconds"], 3),
            "in_process_vs_embedder": round(baseline_s / runs["in_process"]["seconds"], 3),
            "embedder_2_vs_embedder_1": round(
                runs["embedder_1"]["seconds"] / runs["embedder_2"]["seconds"], 3
            ),
        }
        report["chunks_per_s"] = {
            "embedder": round(len(texts) / baseline_s, 2),
            "cli": round(len(texts) / runs["cli"]["seconds"], 2),
            "in_process": round(len(texts) / runs["in_process"]["seconds"], 2),
        }
        print("ratios", report["ratios"], "cpu", report["cpu_ratios"], file=sys.stderr)
        if args.profile:
            report["profile"] = profile_in_process(args, tmp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


PROFILED = """
import sys, time
from pathlib import Path
from ingestion_jobs.embedding import get_embedder
from ingestion_jobs.indexer import index_site
from shared.settings import EmbedderKind, Settings
from shared.vectorstore.edge import EdgeStore

site, data, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
embedder = get_embedder(Settings(data_dir=data, embedder=EmbedderKind(kind), site_dir=site))
embedder.embed_passages(["load the model"])
store = EdgeStore(data / "edge")
started = time.perf_counter()
index_site(site, store=store, embedder=embedder, collection="bench")
store.close()
print(f"ingested in {time.perf_counter() - started:.1f}s", file=sys.stderr)
"""


def profile_in_process(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """py-spy over a separate in-process ingestion (the model load excluded by the script's
    own timing only: py-spy samples the whole process)."""
    out = tmp / "ingest.collapsed"
    data = tmp / "profiled"
    data.mkdir()
    proc = subprocess.run(
        py_spy_record(out, "--", PY, "-c", PROFILED, str(args.site), str(data), args.embedder),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(proc.stderr[-500:], file=sys.stderr)
    return {"load_after": loadavg(), **top_frames(out, n=30)}


__all__ = ["main", "texts_of"]

if __name__ == "__main__":
    main()
