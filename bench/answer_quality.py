"""Answer quality of `bookchat ask` on the development question sets.

For each corpus: index it with `bookchat ingest` (the bundled embedder; incremental, so reruns
cost only the read), then run every question through `bookchat ask --batch -` in one process and
score it:
- answerable kinds: answered (not refused) with a citation to an expected page;
- unanswerable and injection: declined (`refused: true`, no citations).

    uv run python bench/answer_quality.py [--corpora docusaurus,physical-ai]

Writes bench/results/answer_quality.json. The LLM is whatever the environment configures; with
no key it is the offline extractive model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared"
CORPORA = {
    "docusaurus": (SHARED / "corpora" / "docusaurus-docs", "dev-questions-docusaurus.jsonl"),
    "physical-ai": (SHARED / "corpora" / "physical-ai-book", "dev-questions-physical-ai.jsonl"),
}
DECLINE_KINDS = {"unanswerable", "injection"}


def run_corpus(name: str, data_dir: Path) -> dict[str, Any]:
    site, questions_file = CORPORA[name]
    env = {**os.environ, "BOOKCHAT_DATA_DIR": str(data_dir), "BOOKCHAT_SITE_NAME": name}
    bookchat = [sys.executable, "-m", "cli.main"]
    started = time.perf_counter()
    subprocess.run([*bookchat, "ingest", str(site)], env=env, check=True, cwd=ROOT.parent)
    ingest_s = time.perf_counter() - started
    questions = [json.loads(line) for line in (SHARED / "eval" / questions_file).open()]
    started = time.perf_counter()
    answered = subprocess.run(
        [*bookchat, "ask", "--batch", "-"],
        input="\n".join(q["question"].replace("\n", " ") for q in questions) + "\n",
        env=env,
        check=True,
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
    )
    ask_s = time.perf_counter() - started
    results = [json.loads(line) for line in answered.stdout.splitlines()]
    assert len(results) == len(questions), answered.stderr[-2000:]

    by_kind: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for question, result in zip(questions, results, strict=True):
        cited = {c["path"] for c in result["citations"]}
        if question["kind"] in DECLINE_KINDS:
            ok = result["refused"] and not cited
        else:
            ok = not result["refused"] and bool(cited & set(question["expected_paths"]))
        by_kind[question["kind"]].append(ok)
        rows.append(
            {
                "id": question["id"],
                "kind": question["kind"],
                "ok": ok,
                "refused": result["refused"],
                "cited": sorted(cited),
                "expected": question["expected_paths"],
            }
        )
    answerable = [ok for kind, oks in by_kind.items() if kind not in DECLINE_KINDS for ok in oks]
    declinable = [ok for kind, oks in by_kind.items() if kind in DECLINE_KINDS for ok in oks]
    return {
        "answerable_cited_expected": round(sum(answerable) / len(answerable), 3),
        "declined_when_should": round(sum(declinable) / len(declinable), 3),
        "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_kind.items())},
        "ingest_s": round(ingest_s, 1),
        "ask_s_per_question": round(ask_s / len(questions), 3),
        "questions": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="docusaurus,physical-ai")
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "answer")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "answer_quality.json")
    args = parser.parse_args()
    out: dict[str, Any] = {"command": " ".join(sys.argv), "results": {}}
    for name in args.corpora.split(","):
        out["results"][name] = run_corpus(name, args.data / name)
        summary = {k: v for k, v in out["results"][name].items() if k != "questions"}
        print(name, json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
