"""Answer and retrieval quality of `bookchat ask` / `bookchat search` on three question sets per
corpus, side by side: the development set (../shared/eval), and the independent set of
bench/questions split into its `tune` part (tuned on) and its `report` part (only reported).

For each corpus: index it once with `bookchat ingest` (the bundled embedder) into a data dir
that is kept between runs (`--data`; incremental, so a rerun only re-reads the pages), then run
each set's questions through `bookchat search --batch - --limit 10` and `bookchat ask --batch -`
in one process each, and score:

- retrieval (answerable questions): hit@1 and MRR@10 by page (multi-hop: every expected page in
  the top k, as bench/retrieval_quality.py scores it);
- answerable kinds: answered (not refused) with a citation to an expected page;
- multi-hop (questions of several parts): every expected page cited;
- unanswerable and injection: declined (`refused: true`, no citations);
- benign questions tagged `benign-trigger`: refused by the guard (they must not be);
- links in answers' prose outside the site (they must be none).

    uv run python bench/answer_quality.py [--corpora a,b] [--sets dev,tune,report]

Writes bench/results/answer_quality.json. The LLM is whatever the environment configures; with
no key it is the offline extractive model. Cost here (2 cores, MiniLM): the first ingest ~4 min
(docusaurus) + ~6 min (physical-ai); then ~1 min a set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared"
QUESTIONS = ROOT / "questions"
CORPORA = {
    "docusaurus": (SHARED / "corpora" / "docusaurus-docs", "dev-questions-docusaurus.jsonl"),
    "physical-ai": (SHARED / "corpora" / "physical-ai-book", "dev-questions-physical-ai.jsonl"),
}
DECLINE_KINDS = {"unanswerable", "injection"}
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s)\]>\"'`]+", re.I)


def question_file(corpus: str, part: str) -> Path:
    if part == "dev":
        return SHARED / "eval" / CORPORA[corpus][1]
    return QUESTIONS / f"{corpus}.{part}.jsonl"


def _bookchat(args: list[str], env: dict[str, str], lines: list[str]) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input="\n".join(line.replace("\n", " ") for line in lines) + "\n",
        env=env,
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
    )
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(lines), done.stderr[-2000:]
    return results


def _retrieval(question: dict[str, Any], hits: list[dict[str, Any]]) -> tuple[float, float]:
    """hit@1 and reciprocal rank@10 by page (multi-hop: all expected pages within the top k)."""
    expected = set(question["expected_paths"])
    paths = [h["path"] for h in hits[:10]]
    if question["kind"] == "multi-hop":
        hit1 = float(expected <= set(paths[:1]))
        rank = next((k for k in range(1, 11) if expected <= set(paths[:k])), None)
    else:
        hit1 = float(bool(paths[:1]) and paths[0] in expected)
        rank = next((i for i, p in enumerate(paths, 1) if p in expected), None)
    return hit1, (1.0 / rank if rank else 0.0)


def _outside_links(answer: str, site_hosts: set[str]) -> list[str]:
    """URLs in the answer's prose whose host is not the site's. Code blocks and spans are left
    out: a URL quoted in code (`http://localhost:3000/`) is text, not a link a reader follows."""
    found = []
    for url in _URL.findall(_CODE.sub("", answer)):
        host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
        if host not in site_hosts:
            found.append(url)
    return found


def score_set(
    questions: list[dict[str, Any]], searched: list[Any], answered: list[Any]
) -> dict[str, Any]:
    from worker.chat import INJECTION_MESSAGE

    by_kind: dict[str, list[bool]] = defaultdict(list)
    hit1: list[float] = []
    rr: list[float] = []
    rows = []
    benign = benign_refused = 0
    outside: list[str] = []
    site_hosts = {
        urlsplit(c["url"]).hostname or ""
        for result in answered
        if "citations" in result
        for c in result["citations"]
    }
    for question, hits, result in zip(questions, searched, answered, strict=True):
        kind = question["kind"]
        if "error" in result:
            ok, cited, refused = False, set(), None
        else:
            cited = {c["path"] for c in result["citations"]}
            refused = result["refused"]
            outside += _outside_links(result["answer"], site_hosts)
            if kind in DECLINE_KINDS:
                ok = refused and not cited
            else:
                ok = not refused and bool(cited & set(question["expected_paths"]))
        if kind not in DECLINE_KINDS:
            h1, r = _retrieval(question, hits)
            hit1.append(h1)
            rr.append(r)
        if "benign-trigger" in question.get("tags", []):
            benign += 1
            benign_refused += int(result.get("answer") == INJECTION_MESSAGE)
        by_kind[kind].append(ok)
        rows.append(
            {
                "id": question["id"],
                "kind": kind,
                "ok": ok,
                "refused": refused,
                "cited": sorted(cited),
                "expected": question["expected_paths"],
                "top": [h["path"] for h in hits[:3]],
            }
        )
    multi_hop = [set(r["expected"]) <= set(r["cited"]) for r in rows if r["kind"] == "multi-hop"]
    answerable = [ok for kind, oks in by_kind.items() if kind not in DECLINE_KINDS for ok in oks]
    declinable = [ok for kind, oks in by_kind.items() if kind in DECLINE_KINDS for ok in oks]
    return {
        "n": len(questions),
        "answerable_cited_expected": round(sum(answerable) / max(len(answerable), 1), 3),
        "declined_when_should": round(sum(declinable) / max(len(declinable), 1), 3),
        "multi_hop_all_pages_cited": f"{sum(multi_hop)}/{len(multi_hop)}",
        "benign_refused": f"{benign_refused}/{benign}",
        "links_outside_site": len(outside),
        "hit@1": round(sum(hit1) / max(len(hit1), 1), 3),
        "mrr@10": round(sum(rr) / max(len(rr), 1), 3),
        "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_kind.items())},
        "questions": rows,
    }


def run_corpus(name: str, data_dir: Path, parts: list[str]) -> dict[str, Any]:
    site = CORPORA[name][0]
    env = {**os.environ, "BOOKCHAT_DATA_DIR": str(data_dir), "BOOKCHAT_SITE_NAME": name}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli.main", "ingest", str(site)],
        env=env,
        check=True,
        cwd=ROOT.parent,
    )
    out: dict[str, Any] = {"ingest_s": round(time.perf_counter() - started, 1)}
    for part in parts:
        questions = [json.loads(line) for line in question_file(name, part).open() if line.strip()]
        texts = [q["question"] for q in questions]
        searched = _bookchat(["search", "--batch", "-", "--limit", "10"], env, texts)
        started = time.perf_counter()
        answered = _bookchat(["ask", "--batch", "-"], env, texts)
        result = score_set(questions, searched, answered)
        result["ask_s_per_question"] = round((time.perf_counter() - started) / len(texts), 3)
        out[part] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="docusaurus,physical-ai")
    parser.add_argument("--sets", default="dev,tune,report")
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "answer")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "answer_quality.json")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "command": "uv run python bench/answer_quality.py " + " ".join(sys.argv[1:]),
        "results": {},
    }
    for name in args.corpora.split(","):
        out["results"][name] = run_corpus(name, args.data / name, args.sets.split(","))
        for part in args.sets.split(","):
            summary = {
                k: v for k, v in out["results"][name][part].items() if k not in {"questions"}
            }
            print(name, part, json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
