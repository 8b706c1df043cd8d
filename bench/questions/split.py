"""Split an independent question set into a tuning part and a report part.

    # writes docusaurus.tune.jsonl and docusaurus.report.jsonl
    python3 bench/questions/split.py docusaurus.all.jsonl

Stratified and deterministic: questions are grouped by `kind` plus whether they carry the
`paraphrase` / `benign-trigger` tag, ordered within a group by the SHA-256 of their `id`, and dealt
alternately to `tune` and `report`, so each part has the same mix and nobody chose where a
question went. The split is done once, before any tuning, and committed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

TAGS_THAT_STRATIFY = ("paraphrase", "benign-trigger")


def stratum(question: dict[str, object]) -> tuple[str, str]:
    tags = question.get("tags") or []
    assert isinstance(tags, list)
    tag = next((t for t in TAGS_THAT_STRATIFY if t in tags), "")
    return str(question["kind"]), tag


def split(path: Path) -> None:
    questions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for question in questions:
        groups[stratum(question)].append(question)
    parts: dict[str, list[dict[str, object]]] = {"tune": [], "report": []}
    turn = 0
    for key in sorted(groups):
        for question in sorted(
            groups[key], key=lambda q: hashlib.sha256(str(q["id"]).encode()).hexdigest()
        ):
            parts["tune" if turn % 2 == 0 else "report"].append(question)
            turn += 1
    stem = path.name.removesuffix(".all.jsonl")
    for part, items in parts.items():
        items.sort(key=lambda q: str(q["id"]))
        out = path.with_name(f"{stem}.{part}.jsonl")
        out.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in items))
        print(f"{out.name}: {len(items)} questions")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        split(Path(name))
