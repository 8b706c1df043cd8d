"""`bookchat eval`: a maintainer's golden questions, run as CI would run them (the real command in
its own process, over the index `bookchat ingest` wrote), and a regression after a docs change
failing the run with exit status 9."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SAMPLE_SITE

pytestmark = pytest.mark.integration

QUESTIONS = [
    {
        "id": "home",
        "question": "How do I send the arm to its home pose?",
        "expected_pages": ["docs/01-getting-started/02-first-move.md"],
        "facts": ["arm.home("],
    },
    {
        "id": "limits",
        "question": "How do I set soft limits on a joint?",
        "expected_pages": ["docs/02-guides/02-safety.md"],
        "facts": ["lumen limits set"],
    },
    {"id": "ros", "question": "Does Lumen support ROS 2?", "expected_pages": []},
]


def bookchat(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    keys = {"BOOKCHAT_LLM_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY"}  # offline model
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env |= {"BOOKCHAT_DATA_DIR": str(data), "BOOKCHAT_EMBEDDER": "hash"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def write_questions(path: Path, questions: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    return path


def test_golden_questions_pass_then_a_docs_change_is_a_regression(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    data = tmp_path / "data"
    questions = write_questions(tmp_path / "golden.jsonl", QUESTIONS)
    assert bookchat(data, "ingest", str(site)).returncode == 0

    first = bookchat(data, "eval", str(questions), "--out", str(tmp_path / "baseline.json"))
    assert first.returncode == 0, first.stderr
    assert "3/3 passed" in first.stdout, first.stdout
    saved = json.loads((tmp_path / "baseline.json").read_text())
    assert [row["passed"] for row in saved["questions"]] == [True, True, True]
    assert saved["summary"]["declined_when_should"] == 1.0
    assert saved["questions"][0]["facts_found"] == ["arm.home("]

    # The maintainer rewrites the safety page: the soft-limits section is gone.
    safety = site / "docs" / "02-guides" / "02-safety.md"
    text = safety.read_text()
    start, end = text.index("## Soft limits"), text.index("## Collision detection")
    safety.write_text(text[:start] + text[end:])
    assert bookchat(data, "ingest", str(site)).returncode == 0

    second = bookchat(
        data, "eval", str(questions), "--baseline", str(tmp_path / "baseline.json"), "--json"
    )
    assert second.returncode == 9, second.stdout + second.stderr
    result = json.loads(second.stdout)
    assert result["regressions"] == ["limits"]
    assert [row["passed"] for row in result["questions"]] == [True, False, True]
