"""The `bookchat` command line contract: ingest, search, ask (single and batch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from shared.settings import get_settings
from tests.conftest import SAMPLE_SITE

pytestmark = pytest.mark.unit


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "hash")
    for name in ("BOOKCHAT_LLM_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_ingest_search_and_ask_follow_the_contract(runner: CliRunner) -> None:
    ingested = runner.invoke(app, ["ingest", str(SAMPLE_SITE)])
    assert ingested.exit_code == 0, ingested.output
    again = runner.invoke(app, ["ingest", str(SAMPLE_SITE)])
    assert again.exit_code == 0
    assert "0 changed" in again.output
    assert "0 embedded" in again.output

    found = runner.invoke(app, ["search", "home pose", "--limit", "3", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)
    assert 1 <= len(hits) <= 3
    assert set(hits[0]) == {"path", "url", "heading", "title", "score", "text"}
    assert hits[0]["path"].startswith("docs/")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    asked = runner.invoke(app, ["ask", "How do I send the arm to its home pose?", "--json"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert set(answer) == {"answer", "citations", "refused", "session_id"}
    assert answer["refused"] is False
    assert {"path", "url", "heading"} <= set(answer["citations"][0])


def test_batch_modes_answer_one_line_per_input_in_order(runner: CliRunner) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    queries = "home pose\n\nemergency stop\n"
    searched = runner.invoke(app, ["search", "--batch", "-", "--limit", "2"], input=queries)
    assert searched.exit_code == 0, searched.output
    lines = searched.stdout.splitlines()
    assert len(lines) == 2
    assert all(isinstance(json.loads(line), list) for line in lines)

    questions = "How do I send the arm home?\nwho won the 2022 fifa world cup final\n"
    asked = runner.invoke(app, ["ask", "--batch", "-"], input=questions)
    assert asked.exit_code == 0, asked.output
    results = [json.loads(line) for line in asked.stdout.splitlines()]
    assert [r["refused"] for r in results] == [False, True]


def test_bad_arguments_exit_non_zero(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["ingest", str(tmp_path / "missing")]).exit_code != 0
    assert runner.invoke(app, ["ask", "hi", "--session", "not-a-uuid"]).exit_code == 2
    assert runner.invoke(app, ["search"]).exit_code == 2
