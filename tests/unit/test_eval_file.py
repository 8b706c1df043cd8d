"""`bookchat eval`'s question file and baseline: bad input is one error naming what to fix,
before any index or model is opened (the runs themselves: tests/integration/test_eval.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.eval import EvalResult, read_questions, regressions
from cli.main import main

pytestmark = pytest.mark.unit

QUESTION = {"id": "home", "question": "How do I go home?", "expected_pages": ["docs/a.md"]}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.parametrize("line", ['{"id": "a"}', "not json", '{"question": ""}'])
def test_a_bad_line_is_a_validation_error_naming_it(
    tmp_path: Path, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "golden.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n" + line + "\n")
    status, out, _ = run(["eval", str(questions), "--json"], capsys)
    assert status == 2
    error = json.loads(out)["error"]
    assert error["code"] == "validation_error"
    assert "golden.jsonl:2" in error["message"]


def test_an_id_used_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = tmp_path / "golden.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n" + json.dumps(QUESTION) + "\n")
    status, _, err = run(["eval", str(questions)], capsys)
    assert status == 2
    assert "used twice" in err


def test_a_missing_baseline_says_how_to_save_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "golden.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n")
    status, _, err = run(
        ["eval", str(questions), "--baseline", str(tmp_path / "none.json")], capsys
    )
    assert status == 6
    assert "--out" in err


def test_the_file_format_accepts_the_dev_sets_field_names_and_comments(tmp_path: Path) -> None:
    questions = tmp_path / "golden.jsonl"
    questions.write_text(
        "# golden questions\n\n"
        + json.dumps({"question": "Q?", "expected_paths": ["docs/b.md"], "kind": "howto"})
        + "\n"
    )
    (only,) = read_questions(questions)
    assert only.id == "line-3"
    assert only.expected_pages == ["docs/b.md"]
    assert not only.should_decline


def test_only_a_question_that_passed_before_and_fails_now_is_a_regression() -> None:
    rows = [{"id": i, "passed": p} for i, p in [("a", False), ("b", False), ("c", True)]]
    assert regressions(EvalResult(rows), {"a": True, "b": False, "new": True}) == ["a"]
