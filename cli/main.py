"""The `bookchat` command line: ingest, search, ask, report, dev, migrate (and the operator
commands in cli/admin.py). `main` is the entry point: it runs the command and turns any failure
into one line and an exit code (cli/errors.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import typer

from cli import admin
from cli.errors import USAGE_ERROR, CliError, ExitCode, report_failure
from cli.report import ReportFormat
from shared.errors import BookchatError, ErrorCode
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.job_models import ChatRequest

app = typer.Typer(
    name="bookchat",
    help="Grounded answers about a Docusaurus site, with citations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    context: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", "-v", help="Show the traceback of a failure")
    ] = False,
) -> None:
    """Grounded answers about a Docusaurus site, with citations."""
    # `debug` is read by `main` from the arguments (a failure may happen before this runs);
    # declared here so that --help lists it.
    if context.invoked_subcommand != "dev":
        _find_running_dev()


def _find_running_dev() -> None:
    """With no Redis configured, a `bookchat dev` running on this data dir is where the jobs
    and the site are: use its private redis-server and its site (from `<data_dir>/dev.json`)."""
    from cli.embedded import running_dev

    settings = get_settings()
    if settings.redis_url is not None:
        return
    dev = running_dev(settings.data_dir)
    if dev is None or dev.redis_url is None:
        return
    os.environ["BOOKCHAT_REDIS_URL"] = dev.redis_url
    if settings.site_dir is None:
        os.environ["BOOKCHAT_SITE_DIR"] = dev.site_dir
    get_settings.cache_clear()


def _usage(message: str) -> CliError:
    return CliError(USAGE_ERROR, message, ExitCode.USAGE)


def _lines(batch: str) -> Iterator[str]:
    stream = sys.stdin if batch == "-" else Path(batch).open(encoding="utf-8")  # noqa: SIM115
    with stream:
        for line in stream:
            line = line.rstrip("\n")
            if line.strip():
                yield line


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def ingest(
    site_dir: Annotated[
        Path, typer.Argument(help="Site root (with docusaurus.config.* and docs/)")
    ],
    site_url: Annotated[str | None, typer.Option(help="Public URL, overrides the config")] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild the whole index")] = False,
) -> None:
    """Index a Docusaurus site (incremental: only changed pages are embedded)."""
    from cli.progress import ingest_with_progress

    if not site_dir.is_dir():
        raise CliError(ErrorCode.SITE_NOT_FOUND, f"{site_dir} is not a folder")
    settings = get_settings()
    try:
        report = ingest_with_progress(settings, site_dir, site_url=site_url, full_rebuild=full)
    except (BookchatError, CliError):
        raise
    except (OSError, ValueError) as error:
        raise CliError(ErrorCode.INGEST_FAILED, f"ingestion failed: {error}") from error
    typer.echo(
        f"pages: {report.pages_seen} seen, {report.pages_changed} changed, "
        f"{report.pages_removed} removed; chunks: {report.chunks_embedded} embedded, "
        f"{report.chunks_deleted} deleted, {report.chunks_total} total; "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings; {report.seconds:.1f}s",
        err=True,
    )
    for skipped in report.errors:
        typer.secho(
            f"  skipped {skipped.path}: {skipped.code}: {skipped.message}", err=True, fg="yellow"
        )
    for warning in report.warnings:
        typer.secho(
            f"  warning {warning.path or '(site)'}: {warning.rule}: {warning.message}",
            err=True,
            fg="yellow",
        )


def _retriever(settings: Settings) -> Any:
    """The retriever over the index `bookchat ingest` wrote; a missing index is a one-line
    failure that says how to build it (not the store's `Collection not found`)."""
    from cli.embedded import running_dev
    from ingestion_jobs.embedding import get_embedder
    from shared.vectorstore import StoreLockedError, open_store
    from worker.retrieval import Retriever

    try:
        store = open_store(settings)
    except StoreLockedError as error:
        dev = running_dev(settings.data_dir)
        if dev is None:
            raise
        raise CliError(
            ErrorCode.INDEX_UNAVAILABLE,
            f"bookchat dev (pid {dev.pid}) holds the local index in {settings.qdrant_path}: "
            f"stop it first, or ask it: curl -X POST {dev.api_url}/v1/retrieve "
            "-H 'Content-Type: application/json' -d '{\"query\": \"...\"}'",
        ) from error
    if store.current(settings.collection) is None:
        store.close()
        where = settings.qdrant_url or str(settings.qdrant_path)
        raise CliError(
            ErrorCode.INDEX_EMPTY,
            f"no index yet in {where}: run `bookchat ingest SITE_DIR` first "
            "(with the same BOOKCHAT_DATA_DIR or QDRANT_URL)",
        )
    return Retriever(store, get_embedder(settings), settings.collection)


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The search query")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    batch: Annotated[str | None, typer.Option(help="FILE or - : one query per line")] = None,
) -> None:
    """Search the index; best passages first."""
    if (query is None) == (batch is None):
        raise _usage("give a QUERY or --batch FILE")
    from worker.retrieve_job import public_passage

    settings = get_settings()
    retriever = _retriever(settings)

    def run(q: str) -> list[dict[str, Any]]:
        hits = retriever.search(q, limit=limit, site=settings.site_name)
        return [public_passage(hit).model_dump() for hit in hits]

    if batch is not None:
        for line in _lines(batch):
            _emit(run(line))
        return
    assert query is not None
    results = run(query)
    if as_json:
        _emit(results)
        return
    for rank, hit in enumerate(results, 1):
        typer.echo(
            f"{rank}. [{hit['score']:.3f}] {hit['title']} > {hit['heading']}\n   {hit['url']}"
        )


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    selection: Annotated[str | None, typer.Option(help="Highlighted text")] = None,
    page_url: Annotated[str | None, typer.Option(help="The page the reader is on")] = None,
    session: Annotated[str | None, typer.Option(help="Continue this session id")] = None,
    batch: Annotated[str | None, typer.Option(help="FILE or - : one question per line")] = None,
) -> None:
    """Answer a question from the site, with citations (or decline)."""
    if (question is None) == (batch is None):
        raise _usage("give a QUESTION or --batch FILE")
    if session is not None:
        try:
            uuid.UUID(session)
        except ValueError as error:
            raise _usage("--session must be a session id (UUID)") from error
    if question is not None:
        _chat_request(question, session, selection, page_url)  # refuse bad input before any work
    settings = get_settings()
    questions = [question] if question is not None else list(_lines(batch or "-"))
    logging.basicConfig(level=logging.WARNING)
    _migrate_embedded(settings)
    failed = asyncio.run(
        _ask_all(settings, questions, batch is not None, as_json, selection, page_url, session)
    )
    if failed:
        raise typer.Exit(int(failed))


def _chat_request(
    text: str, session: str | None, selection: str | None, page_url: str | None
) -> ChatRequest:
    """The job request `bookchat ask` answers, validated like the API's body (pydantic
    ValidationError: a blank or oversized question, a bad page URL…)."""
    from shared.job_models import ChatRequest

    return ChatRequest(
        message=text,
        session_id=uuid.UUID(session) if session else uuid.uuid4(),
        selection=selection,
        page_url=page_url,
    )


async def _ask_all(
    settings: Settings,
    questions: list[str],
    batch: bool,
    as_json: bool,
    selection: str | None,
    page_url: str | None,
    session: str | None,
) -> ExitCode | None:
    """Answers each question in turn. A failed question of a batch prints its error in place of
    its result and the batch goes on; returns the exit code of the last failure (None: none)."""
    from cli.errors import describe, error_object
    from shared.db import make_engine, make_sessionmaker
    from shared.history import History
    from worker.chat_job import answer_and_record
    from worker.llm import configure_tracing

    configure_tracing(settings)
    failed: ExitCode | None = None
    retriever = _retriever(settings)
    engine = make_engine(settings.effective_database_url, settings)
    sessionmaker = make_sessionmaker(engine)
    try:
        for text in questions:
            try:
                request = _chat_request(text, session, selection, page_url)
                answer, _ = await answer_and_record(
                    request, settings=settings, retriever=retriever, history=History(sessionmaker)
                )
            except (BookchatError, pydantic.ValidationError) as error:
                if not batch:
                    raise  # `main` reports it (JSON under --json)
                failure = describe(error)
                failed = failure.exit_code
                _emit(error_object(failure))
                continue
            if as_json or batch:
                _emit(
                    {
                        "answer": answer.answer,
                        "citations": answer.citations,
                        "refused": answer.refused,
                        "session_id": str(request.session_id),
                    }
                )
            else:
                typer.echo(answer.answer)
                for citation in answer.citations:
                    typer.echo(
                        f"  - {citation['title']} > {citation['heading']}: {citation['url']}"
                    )
    finally:
        await engine.dispose()
    return failed


def _migrate_embedded(settings: Settings) -> None:
    """The embedded SQLite database is created and migrated on first use."""
    if settings.database_url is None:
        from shared.migrate import upgrade_database

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_database(settings.effective_database_url)


@app.command()
def migrate() -> None:
    """Apply database migrations (history tables)."""
    from shared.migrate import upgrade_database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.effective_database_url)
    typer.echo("database is up to date", err=True)


@app.command()
def report(
    since: Annotated[str, typer.Option(help="Look-back: 24h, 7d, 2w")] = "7d",
    site: Annotated[str | None, typer.Option(help="Only this site (default: all)")] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="table (terminal), markdown, csv or json")
    ] = ReportFormat.TABLE,
) -> None:
    """The maintainer's report: knowledge gaps, feedback and usage over a period."""
    from cli.report import build_local_report, render
    from shared.report_model import parse_since

    try:
        look_back = parse_since(since)
    except ValueError as error:
        raise _usage(str(error)) from error
    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    _migrate_embedded(settings)
    text = render(build_local_report(settings, look_back, site), fmt)
    if text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def dev(
    site: Annotated[
        Path | None, typer.Option(help="Site root to serve (default: the sample)")
    ] = None,
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
) -> None:
    """Run everything in one process with no service, key or network: API, worker, index."""
    from cli.dev import run_dev

    raise typer.Exit(run_dev(site, host=host, port=port))


app.add_typer(admin.app)  # sites, jobs, worker


def _flag(args: list[str], *names: str) -> bool:
    """Whether one of `names` is among the options (before a `--`)."""
    options = args[: args.index("--")] if "--" in args else args
    return any(name in options for name in names)


def main(argv: list[str] | None = None) -> None:
    """The `bookchat` entry point: run the command; a failure becomes one line (or a JSON
    error under --json) and a distinct exit code; the traceback only with --debug / -v."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        outcome = app(args=args, prog_name="bookchat", standalone_mode=False)
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except Exception as error:  # every failure is reported, none is swallowed
        code = report_failure(
            error,
            as_json=_flag(args, "--json", "--batch"),
            debug=_flag(args, "--debug", "-v"),
        )
        raise SystemExit(int(code)) from None
    except KeyboardInterrupt as interrupt:
        raise SystemExit(int(report_failure(interrupt, as_json=False, debug=False))) from None
    raise SystemExit(outcome if isinstance(outcome, int) else 0)


if __name__ == "__main__":
    main()
