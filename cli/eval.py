"""`bookchat eval QUESTIONS.jsonl`: a maintainer's golden questions against the current index
and model, scored, and compared with a saved baseline (docs/eval.md).

A question file has one JSON object a line (blank lines and lines starting with `#` skipped):

    {"id": "install", "question": "How do I install it?", "expected_pages": ["docs/install.md"],
     "facts": ["apt install"]}
    {"id": "no-windows", "question": "Does it run on Windows 95?", "expected_pages": []}

`expected_pages` (or `expected_paths`, the development set's name) lists the pages, as
`bookchat search` prints their `path`, of which at least one must be cited (every one with
`"cite_all": true`, for a question of several parts); an empty list means the bot must decline.
`facts` are strings that must all appear in the answer (case-insensitive). A question passes
when it is answered (not refused), cites an expected page and holds every fact; a decline
question passes when it is refused with no citation.

The result (`--out FILE`, or stdout with `--json`) is one JSON object: a summary and one row a
question. Given as `--baseline`, a saved result is what the run is compared with: a question
that passed there and fails now is a regression, and regressions make the exit status 9.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from cli.errors import CliError, ExitCode
from shared.errors import ErrorCode
from shared.settings import Settings

__all__ = [
    "EvalResult",
    "GoldenQuestion",
    "read_questions",
    "read_baseline",
    "regressions",
    "render_table",
    "run_eval",
    "write_result",
]

#: How many search results a question's expected page is looked for in (its `rank`).
RANK_DEPTH = 10


class GoldenQuestion(BaseModel):
    """One line of a question file."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    question: str = Field(min_length=1, max_length=4000)
    expected_pages: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("expected_pages", "expected_paths")
    )
    facts: list[str] = Field(default_factory=list)
    cite_all: bool = False  # a question of several parts: every expected page must be cited

    @property
    def should_decline(self) -> bool:
        return not self.expected_pages


@dataclass(slots=True)
class EvalResult:
    """A run's rows (one a question, in the file's order) and their summary."""

    rows: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        answerable = [r for r in self.rows if r["expect"] == "answer"]
        declines = [r for r in self.rows if r["expect"] == "decline"]
        facts = sum(len(r["facts_missing"]) + len(r["facts_found"]) for r in self.rows)
        return {
            "questions": len(self.rows),
            "passed": sum(r["passed"] for r in self.rows),
            "answerable_cited_expected": _share(r["cited_expected"] for r in answerable),
            "declined_when_should": _share(r["passed"] for r in declines),
            "facts_found": f"{sum(len(r['facts_found']) for r in self.rows)}/{facts}",
            "hit@1": _share(r["rank"] == 1 for r in answerable),
        }

    def to_json(self, regressed: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": self.summary(), "questions": self.rows}
        if regressed is not None:
            out["regressions"] = regressed
        return out


def _share(values: Iterable[bool]) -> float | None:
    items = list(values)
    return round(sum(items) / len(items), 3) if items else None


def read_questions(path: Path) -> list[GoldenQuestion]:
    """The questions of `path`, each with an id (its line number when it has none).

    Raises CliError: `not_found` (exit 6) for a missing file, `validation_error` (exit 2) for a
    line that is not a question object or an id used twice, naming the line."""
    if not path.is_file():
        raise CliError(ErrorCode.NOT_FOUND, f"no such question file: {path}")
    questions: list[GoldenQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            question = GoldenQuestion.model_validate_json(line)
        except pydantic.ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "line"
            raise CliError(
                ErrorCode.VALIDATION_ERROR,
                f"{path}:{number}: {where}: {problem['msg']}",
                ExitCode.USAGE,
            ) from error
        question.id = question.id or f"line-{number}"
        if question.id in seen:
            raise CliError(
                ErrorCode.VALIDATION_ERROR,
                f"{path}:{number}: the id {question.id!r} is used twice",
                ExitCode.USAGE,
            )
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise CliError(ErrorCode.VALIDATION_ERROR, f"{path}: no questions", ExitCode.USAGE)
    return questions


def _row(question: GoldenQuestion, answer: Any, searched: list[str]) -> dict[str, Any]:
    cited = list(dict.fromkeys(str(c["path"]) for c in answer.citations))
    expected = set(question.expected_pages)
    text = answer.answer.lower()
    found = [f for f in question.facts if f.lower() in text]
    missing = [f for f in question.facts if f.lower() not in text]
    rank = next((i for i, path in enumerate(searched, 1) if path in expected), None)
    cited_expected = (expected <= set(cited)) if question.cite_all else bool(expected & set(cited))
    if question.should_decline:
        passed = answer.refused and not cited
    else:
        passed = not answer.refused and cited_expected and not missing
    return {
        "id": question.id,
        "question": question.question,
        "expect": "decline" if question.should_decline else "answer",
        "passed": passed,
        "refused": answer.refused,
        "cited": cited,
        "expected_pages": question.expected_pages,
        "cited_expected": cited_expected,
        "facts_found": found,
        "facts_missing": missing,
        "rank": rank,
        "answer": answer.answer,
    }


async def run_eval(settings: Settings, questions: list[GoldenQuestion]) -> EvalResult:
    """Asks each question as `bookchat ask` would (no session, nothing recorded in the history)
    and searches it as `bookchat search` would, for the rank of its first expected page.

    Raises CliError / BookchatError as `bookchat ask` does (no index, the model failing)."""
    import asyncio

    from cli.queries import local_retriever
    from shared.job_models import ChatRequest
    from worker.chat import answer_question
    from worker.llm import configure_tracing

    configure_tracing(settings)
    retriever = local_retriever(settings)
    rows = []
    for question in questions:
        answer = await answer_question(
            ChatRequest(message=question.question), settings=settings, retriever=retriever
        )
        hits = await asyncio.to_thread(
            retriever.search, question.question, limit=RANK_DEPTH, site=settings.site_name
        )
        rows.append(_row(question, answer, [hit.path for hit in hits]))
    return EvalResult(rows)


def read_baseline(path: Path) -> dict[str, bool]:
    """Whether each question passed in a saved result (`--out` of an earlier run), by id."""
    if not path.is_file():
        raise CliError(
            ErrorCode.NOT_FOUND,
            f"no baseline at {path}: save one first with `bookchat eval QUESTIONS --out {path}`",
        )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return {str(row["id"]): bool(row["passed"]) for row in saved["questions"]}
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(
            ErrorCode.VALIDATION_ERROR,
            f"{path} is not a result of `bookchat eval --out` ({error})",
            ExitCode.USAGE,
        ) from error


def regressions(result: EvalResult, baseline: dict[str, bool]) -> list[str]:
    """Ids of the questions that passed in `baseline` and fail now, in the file's order. A
    question the baseline does not know (new) or that failed there too is no regression."""
    return [r["id"] for r in result.rows if baseline.get(r["id"]) and not r["passed"]]


def render_table(result: EvalResult, regressed: list[str] | None) -> str:
    """The run for a terminal: one line a question, then the summary."""
    lost = set(regressed or [])
    lines = [f"{'id':<24} {'expect':<8} {'result':<10} {'rank':>4}  cited"]
    for row in result.rows:
        status = "pass" if row["passed"] else "FAIL"
        if row["id"] in lost:
            status = "REGRESSED"
        facts = ""
        if row["facts_missing"]:
            facts = f"  (missing: {', '.join(row['facts_missing'])})"
        cited = ", ".join(row["cited"]) or ("declined" if row["refused"] else "-")
        rank = str(row["rank"] or "-")
        lines.append(
            f"{row['id'][:24]:<24} {row['expect']:<8} {status:<10} {rank:>4}  {cited}{facts}"
        )
    summary = result.summary()
    lines.append("")
    lines.append(
        f"{summary['passed']}/{summary['questions']} passed; answerable cited an expected page: "
        f"{_percent(summary['answerable_cited_expected'])}; declined when they should: "
        f"{_percent(summary['declined_when_should'])}; facts found: {summary['facts_found']}; "
        f"hit@1: {_percent(summary['hit@1'])}"
    )
    if regressed is not None:
        lines.append(f"regressions against the baseline: {len(regressed)}")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def write_result(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
