"""Questions in the site's own language on small sites of ours (issue 33): Chinese, Japanese,
German, and English with a zh-Hans translation (tests/language_sites.py), through the real
ingest, hybrid retrieval and the offline answerer.

    uv run python -m bench.language_quality [--models minilm,auto] [--out PATH]

For each bundled model setting (``minilm``, ``e5``, or ``auto``: none named, so the site's
languages choose), and each site: retrieval hit@1 by page and offline answers citing an
expected page over the answerable questions, declines over the questions the site does not
cover, and the seconds the whole run of the site took (ingest + every question), with the load
average around it. Results go to ``bench/results/language_quality.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from shared.settings import EmbedderKind, Settings
from tests.language_sites import SITES, evaluate

ROOT = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="minilm,auto")
    parser.add_argument("--sites", default=",".join(SITES))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "language_quality.json")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "command": "uv run python -m bench.language_quality " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "results": {},
    }
    for model in args.models.split(","):
        settings = Settings(
            embedder=EmbedderKind.BUNDLED,
            embedding_bundled_model=None if model == "auto" else model,
        )
        rows: dict[str, Any] = {}
        for site in args.sites.split(","):
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            figures = asyncio.run(evaluate(site, settings))
            rows[site] = {
                "hit_at_1": round(figures.hit_at_1, 2),
                "cited": round(figures.cited_rate, 2),
                "declined": f"{figures.declined}/{figures.uncovered}",
                "answerable": figures.answerable,
                "seconds": round(time.perf_counter() - started, 1),
                "load_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "misses": figures.misses,
            }
            print(model, site, {k: v for k, v in rows[site].items() if k != "misses"})
        out["results"][model] = rows
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
