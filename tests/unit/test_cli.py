"""The `bookchat` command line contract: ingest, search, ask (single and batch)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from typer.testing import CliRunner

from cli.errors import ExitCode, describe, error_object
from cli.main import app, main
from cli.queries import numbered_answer
from shared.errors import BookchatError, ErrorCode
from shared.settings import Settings, get_settings
from tests.conftest import ROOT, SAMPLE_SITE
from tests.fake_llm import FakeLLM, Reply, error

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


def test_bad_arguments_exit_non_zero(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_main(["ingest", str(tmp_path / "missing")], capsys)[0] != 0
    assert _run_main(["ask", "hi", "--session", "not-a-uuid"], capsys)[0] == 2
    assert _run_main(["search"], capsys)[0] == 2


def test_a_question_the_api_would_refuse_is_a_usage_error_before_any_work(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    # No index exists: the question is refused first (the API's 422), not "no index yet".
    for bad in (["ask", ""], ["ask", "   "], ["ask", "hi", "--page-url", "javascript:x"]):
        code, out, err = _run_main([*bad, "--json"], capsys)
        assert code == ExitCode.USAGE, (bad, out, err)
        assert json.loads(out)["error"]["code"] == "validation_error"

    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    long_line = "why " * 1001
    asked = runner.invoke(app, ["ask", "--batch", "-"], input=f"{long_line}\nHow do I go home?\n")
    assert asked.exit_code == ExitCode.USAGE, asked.output
    first, second = (json.loads(line) for line in asked.stdout.splitlines())
    assert first["error"]["code"] == "validation_error"
    assert second["refused"] is False


def test_an_empty_question_is_refused_in_plain_words(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    for empty in ("", "   "):
        code, out, err = _run_main(["ask", empty], capsys)
        assert code == ExitCode.USAGE
        assert err.strip() == 'error: the question is empty: bookchat ask "How do I ...?"', err
        assert "String should have" not in err


def test_plain_text_answers_number_their_markers_as_the_sources_listed(
    runner: CliRunner,
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    asked = runner.invoke(app, ["ask", "How do I stop the arm in an emergency?"])
    assert asked.exit_code == 0, asked.output
    text, _, sources = asked.stdout.partition("\nSources:\n")
    listed = re.findall(r"^\[(\d+)\] .+ > .+: https?://\S+$", sources, flags=re.M)
    assert listed == [str(n) for n in range(1, len(listed) + 1)], sources
    assert len(listed) >= 2, asked.stdout
    assert set(re.findall(r"\[(\d+)\]", text)) == set(listed), asked.stdout


def test_numbered_answer_maps_passage_numbers_to_list_places() -> None:
    citations = [
        {"number": 4, "title": "A", "heading": "x", "url": "https://d.example/a"},
        {"number": 2, "title": "B", "heading": "y", "url": "https://d.example/b"},
    ]
    assert numbered_answer("One [4]. Two [2][4]. Not cited [9].", citations) == (
        "One [1]. Two [2][1]. Not cited [9].\n\nSources:\n"
        "[1] A > x: https://d.example/a\n[2] B > y: https://d.example/b"
    )


def test_a_report_of_a_site_that_is_not_there_fails_naming_the_sites(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run_main(["report", "--site", "nosuch"], capsys)
    assert code == ExitCode.NOT_FOUND, err
    assert "no site 'nosuch' here (sites: default)" in err
    assert _run_main(["report", "--site", "default", "--format", "json"], capsys)[0] == 0


def test_make_test_of_the_unit_tier_starts_no_service() -> None:
    def planned(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-C", str(ROOT), "test", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ".ci/services" not in planned("PYTEST_ARGS=-m unit")
    assert ".ci/services" in planned()
    assert ".ci/services" in planned("PYTEST_ARGS=-m integration")


def _run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_a_failure_is_one_actionable_line_with_a_distinct_exit_code(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run_main(["search", "home pose"], capsys)
    assert (code, out) == (ExitCode.INDEX, "")
    assert err.count("\n") == 1
    assert "run `bookchat ingest SITE_DIR` first" in err

    code, out, err = _run_main(["search", "home pose", "--json"], capsys)
    assert code == ExitCode.INDEX
    assert json.loads(out) == {
        "error": {"code": "index_empty", "message": err_message(out)},
    }
    assert err == ""

    code, _, err = _run_main(["search", "--no-such-option"], capsys)
    assert code == ExitCode.USAGE
    assert err.strip() == "error: No such option: --no-such-option (see `bookchat search --help`)"

    code, _, err = _run_main(["ingest", str(tmp_path / "missing")], capsys)
    assert code == ExitCode.NOT_FOUND
    assert err.count("\n") == 1

    code, out, _ = _run_main(["ask", "--batch", str(tmp_path / "none.txt")], capsys)
    assert code == ExitCode.NOT_FOUND
    assert json.loads(out)["error"]["code"] == "not_found"


def err_message(out: str) -> str:
    message: str = json.loads(out)["error"]["message"]
    assert message.startswith("no index yet in ")
    return message


def test_the_traceback_only_with_debug(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, quiet = _run_main(["search", "home pose"], capsys)
    assert "Traceback" not in quiet
    for flag in ("--debug", "-v"):
        code, _, loud = _run_main([flag, "search", "home pose"], capsys)
        assert code == ExitCode.INDEX
        assert "Traceback (most recent call last)" in loud
        assert loud.rstrip().splitlines()[-1].startswith("error: no index yet")


@pytest.mark.parametrize(
    ("error", "code", "exit_code"),
    [
        (redis.exceptions.ConnectionError("Error 111 connecting"), "queue_unavailable", 4),
        (BookchatError(ErrorCode.LLM_UNAVAILABLE, "the model is down"), "llm_unavailable", 5),
        (BookchatError(ErrorCode.INDEX_UNAVAILABLE, "held"), "index_unavailable", 3),
        (BookchatError(ErrorCode.INGEST_FAILED, "broke"), "ingest_failed", 7),
        (KeyboardInterrupt(), "interrupted", 130),
        (RuntimeError("boom\nsecond line"), "internal_error", 1),
    ],
)
def test_each_kind_of_failure_has_its_code(error: BaseException, code: str, exit_code: int) -> None:
    failure = describe(error)
    assert (failure.code, int(failure.exit_code)) == (code, exit_code)
    assert "\n" not in failure.message
    assert error_object(failure) == {"error": {"code": code, "message": failure.message}}


def test_ingest_prints_what_the_reader_could_not_interpret(
    runner: CliRunner, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    (site / "docs" / "intro.md").write_text("# Intro\n\nSome text.\n")
    (site / "docusaurus.config.js").write_text(
        "module.exports = {url: 'https://ex.com', baseUrl: pick(), presets: [['classic', {}]]};"
    )
    ingested = runner.invoke(app, ["ingest", str(site)])
    assert ingested.exit_code == 0, ingested.output
    assert "1 warnings" in ingested.output
    assert "warning docusaurus.config.js: config.baseUrl:" in ingested.output


def test_a_failed_question_prints_a_json_error_and_the_batch_goes_on(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0

    def respond(body: dict[str, Any]) -> Reply | None:
        asked = [m["content"] for m in body["messages"] if m["role"] == "user"]
        return error(500) if "emergency" in asked[-1] else None  # None: as an agent would

    with FakeLLM(respond=respond) as fake:
        monkeypatch.setenv("BOOKCHAT_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("BOOKCHAT_LLM_API_KEY", "test")
        monkeypatch.setenv("BOOKCHAT_LLM_MODEL", "primary")
        get_settings.cache_clear()
        questions = "What does the emergency stop do?\nHow do I send the arm home?\n"
        asked = runner.invoke(app, ["ask", "--batch", "-"], input=questions)
    assert asked.exit_code == ExitCode.LLM, asked.output  # something failed, and it says so
    first, second = (json.loads(line) for line in asked.stdout.splitlines())
    assert first["error"]["code"] == "llm_unavailable"
    assert first["error"]["message"]
    assert second["refused"] is False
    assert second["citations"]


def test_a_single_question_that_fails_prints_its_json_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    with FakeLLM() as fake:
        fake.script_for_model("primary", error(503))
        monkeypatch.setenv("BOOKCHAT_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("BOOKCHAT_LLM_API_KEY", "test")
        monkeypatch.setenv("BOOKCHAT_LLM_MODEL", "primary")
        get_settings.cache_clear()
        code, out, _ = _run_main(["ask", "How do I send the arm home?", "--json"], capsys)
    assert code == ExitCode.LLM
    assert json.loads(out)["error"]["code"] == "llm_unavailable"


def test_ingest_of_a_folder_that_is_no_site_leaves_the_index(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    not_a_site = tmp_path / "notes"
    not_a_site.mkdir()
    (not_a_site / "todo.md").write_text("# Todo\n\nNothing to see.\n")
    code, _, err = _run_main(["ingest", str(not_a_site)], capsys)
    assert code == ExitCode.NOT_FOUND
    assert "is not a Docusaurus site" in err
    found = runner.invoke(app, ["search", "home pose", "--limit", "1", "--json"])
    assert json.loads(found.stdout), "the index of the real site was emptied"


class _Exec(Exception):
    """Raised by the stand-in for os.execv(p), carrying the command it was given."""


def _worker_argv(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, *args: str, qdrant_url: str | None = None
) -> list[str]:
    def fake_exec(file: str, argv: list[str]) -> None:
        assert file == argv[0]
        raise _Exec(argv)

    monkeypatch.setattr("cli.admin.os.execv", fake_exec)
    monkeypatch.setattr("cli.admin.os.execvp", fake_exec)
    for name in ("BOOKCHAT_QDRANT_URL", "QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)
    if qdrant_url is not None:
        monkeypatch.setenv("QDRANT_URL", qdrant_url)
    get_settings.cache_clear()
    result = runner.invoke(app, ["worker", *args])
    assert isinstance(result.exception, _Exec), result.output
    argv: list[str] = result.exception.args[0]
    return argv


@pytest.mark.parametrize(
    ("setting", "with_events"), [(None, False), ("false", False), ("true", True)]
)
def test_the_worker_sends_task_events_only_when_the_setting_says_so(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, setting: str | None, with_events: bool
) -> None:
    if setting is None:
        monkeypatch.delenv("BOOKCHAT_CELERY_TASK_EVENTS", raising=False)
    else:
        monkeypatch.setenv("BOOKCHAT_CELERY_TASK_EVENTS", setting)
    argv = _worker_argv(runner, monkeypatch, "--queues", "chat")
    assert ("-E" in argv) is with_events
    assert argv[argv.index("-Q") + 1] == "chat,ingest"


@pytest.mark.parametrize("qdrant_url", [None, "http://127.0.0.1:6333"])
def test_the_chat_worker_holds_chat_concurrency_answers_in_one_threads_pool(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, qdrant_url: str | None
) -> None:
    # Embedded default and Qdrant server alike: one process, BOOKCHAT_CHAT_CONCURRENCY threads
    # (200 unless set; a prefork pool of 200 would be 200 processes).
    monkeypatch.delenv("BOOKCHAT_CHAT_CONCURRENCY", raising=False)
    argv = _worker_argv(runner, monkeypatch, "--queues", "chat", qdrant_url=qdrant_url)
    assert argv[argv.index("--pool") + 1] == "threads"
    assert argv[argv.index("--concurrency") + 1] == "200"
    monkeypatch.setenv("BOOKCHAT_CHAT_CONCURRENCY", "64")
    argv = _worker_argv(runner, monkeypatch, "--queues", "chat", qdrant_url=qdrant_url)
    assert argv[argv.index("--concurrency") + 1] == "64"
    assert (
        _worker_argv(runner, monkeypatch, "--queues", "chat", "--concurrency", "8")[
            argv.index("--concurrency") + 1
        ]
        == "8"
    )
    if qdrant_url is not None:  # ingestion: its own single prefork process
        ingest = _worker_argv(runner, monkeypatch, "--queues", "ingest", qdrant_url=qdrant_url)
        assert "--pool" not in ingest
        assert ingest[ingest.index("--concurrency") + 1] == "1"


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("from_file", [True, False])
def test_a_batch_file_is_read_line_by_line_like_stdin(
    runner: CliRunner, tmp_path: Path, command: str, from_file: bool
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    batch = tmp_path / "queries.txt"
    batch.write_bytes(b"home pose\n\n  \nbad \xff\xfe line\r\nemergency stop\r\n")
    source, stdin = (str(batch), None) if from_file else ("-", batch.read_bytes())
    result = runner.invoke(app, [command, "--batch", source], input=stdin)
    assert result.exit_code == ExitCode.USAGE, result.output
    # Blank lines are skipped; every other line has its output line, in order.
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == 3, outputs
    assert outputs[1]["error"]["code"] == "validation_error"
    assert "line 4" in outputs[1]["error"]["message"]
    assert "error" not in outputs[0]
    assert "error" not in outputs[2]


def test_a_folder_as_batch_file_is_a_usage_error(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Like a missing file: one JSON error line (--batch prints JSON), before any other work.
    for command in ("search", "ask"):
        code, out, err = _run_main([command, "--batch", str(tmp_path)], capsys)
        assert code == ExitCode.USAGE, (out, err)
        (line,) = out.splitlines()
        assert json.loads(line)["error"]["code"] == "usage_error"
        assert "folder" in line


def test_the_worker_runs_this_interpreters_celery_not_one_on_path(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `.venv/bin/bookchat worker` run by its path: the venv's bin is not on PATH.
    monkeypatch.setenv("PATH", "/nonexistent")
    argv = _worker_argv(runner, monkeypatch, "--queues", "chat")
    assert argv[:5] == [sys.executable, "-m", "celery", "-A", "worker.celery_app"]


def test_ingest_from_a_repository_reads_the_monorepo_and_says_the_commit(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from tests.unit.test_site_repo import commit_all, make_remote

    bare, work = make_remote(tmp_path)
    shutil.copytree(
        SAMPLE_SITE.parents[1] / "tests/docusaurus/repos/monorepo", work, dirs_exist_ok=True
    )
    commit = commit_all(work, "site")
    ingested = runner.invoke(app, ["ingest", "--repo", bare.as_uri(), "--subdir", "website"])
    assert ingested.exit_code == 0, ingested.output
    assert f"{bare.as_uri()} at {commit} (main)" in ingested.output
    assert "pages: 3 seen" in ingested.output
    assert "0 warnings" in ingested.output
    searched = runner.invoke(app, ["search", "bollard bow line", "--json"])
    assert "../docs/guides/mooring.md" in {hit["path"] for hit in json.loads(searched.stdout)}

    code, _, err = _run_main(["ingest", "--repo", (tmp_path / "gone.git").as_uri()], capsys)
    assert code == ExitCode.INGEST_FAILED
    assert err.startswith("error: git ls-remote failed: fatal:"), err
    assert err.count("\n") == 1
    code, _, err = _run_main(["ingest", str(tmp_path), "--repo", bare.as_uri()], capsys)
    assert code == ExitCode.USAGE


def test_dev_says_where_citations_link(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.dev import citation_target

    settings = get_settings()
    assert citation_target(settings, SAMPLE_SITE).startswith(
        "https://lumen.example.org/lumen/ (docusaurus.config's url + baseUrl"
    )
    local = settings.model_copy(update={"site_url": "http://localhost:3000/lumen/"})
    assert citation_target(local, SAMPLE_SITE).startswith(
        "http://localhost:3000/lumen/ (--site-url"
    )
    bare = tmp_path / "bare"
    (bare / "docs").mkdir(parents=True)
    assert "relative" in citation_target(settings, bare)

    code, _, err = _run_main(["dev", "--site-url", "localhost:3000"], capsys)
    assert code == ExitCode.USAGE
    assert "--site-url must be an absolute http(s) URL" in err


def test_a_report_over_a_history_of_two_sites_says_so(
    runner: CliRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.invoke(app, ["ingest", str(SAMPLE_SITE)]).exit_code == 0
    asked = runner.invoke(app, ["ask", "How do I send the arm to its home pose?"])
    assert asked.exit_code == 0, asked.output
    # Another site's reader in the same history (as a second `bookchat dev --site` leaves).
    asyncio.run(_add_session(get_settings(), site="second"))

    code, _, err = _run_main(["report", "--format", "json"], capsys)
    assert code == 0, err
    assert "this history holds 2 sites (default, second); the report adds them up" in err
    code, out, err = _run_main(["report", "--site", "default", "--format", "json"], capsys)
    assert code == 0, err
    assert "holds 2 sites" not in err
    assert json.loads(out)["usage"]["questions"] == 1, out


async def _add_session(settings: Settings, *, site: str) -> None:
    from shared.db import make_engine, make_sessionmaker
    from shared.models import ChatSession

    engine = make_engine(settings.effective_database_url, settings)
    try:
        async with make_sessionmaker(engine)() as db:
            db.add(ChatSession(site=site))
            await db.commit()
    finally:
        await engine.dispose()
