"""The `bookchat` command line: ingest, search, ask, eval, report, dev, migrate (and the operator
commands in cli/admin.py). `main` is the entry point: it runs the command and turns any failure
into one line and an exit code (cli/errors.py). The commands' work lives beside them: search and
ask in cli/queries.py, eval in cli/eval.py, report in cli/report.py, dev in cli/dev.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from cli import admin
from cli.errors import USAGE_ERROR, CliError, ExitCode, report_failure
from cli.report import ReportFormat
from shared.errors import BookchatError, ErrorCode
from shared.settings import get_settings

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
    if settings.site_dir is None and Path(dev.site_dir).is_dir():  # not a repository's name
        os.environ["BOOKCHAT_SITE_DIR"] = dev.site_dir
    get_settings.cache_clear()


def _usage(message: str) -> CliError:
    return CliError(USAGE_ERROR, message, ExitCode.USAGE)


_REPO_HELP = "The site's git repository (https, ssh or file:// URL), fetched first"


@app.command()
def ingest(
    site_dir: Annotated[
        Path | None, typer.Argument(help="Site root (with docusaurus.config.* and docs/)")
    ] = None,
    site_url: Annotated[str | None, typer.Option(help="Public URL, overrides the config")] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild the whole index")] = False,
    repo: Annotated[str | None, typer.Option(help=_REPO_HELP)] = None,
    ref: Annotated[str | None, typer.Option(help="Branch or tag (default: remote HEAD)")] = None,
    subdir: Annotated[
        str, typer.Option(help="Folder of the repository with docusaurus.config.*")
    ] = "",
) -> None:
    """Index a Docusaurus site (incremental: only changed pages are embedded)."""
    from cli.progress import ingest_with_progress
    from ingestion_jobs.site_repo import SiteRepo, check_out

    if (site_dir is None) == (repo is None):
        raise _usage("give a SITE_DIR or --repo URL")
    settings = get_settings()
    checkout = None
    if repo is not None:
        source = SiteRepo(repo, ref, subdir)
        checkout = check_out(source, settings.data_dir)
        site_dir = checkout.site_dir
        typer.echo(f"{source.shown_url} at {checkout.commit} ({checkout.ref})", err=True)
    assert site_dir is not None
    if not site_dir.is_dir():
        raise CliError(ErrorCode.SITE_NOT_FOUND, f"{site_dir} is not a folder")
    try:
        report = ingest_with_progress(
            settings,
            site_dir,
            site_url=site_url,
            full_rebuild=full,
            repo_root=checkout.root if checkout is not None else None,
        )
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


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The search query")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    batch: Annotated[
        str | None,
        typer.Option(
            help="FILE or - : one query a line; one JSON output line per non-blank line "
            "(blank lines are skipped)"
        ),
    ] = None,
) -> None:
    """Search the index; best passages first."""
    if (query is None) == (batch is None):
        raise _usage("give a QUERY or --batch FILE")
    from cli.queries import search_index

    failed = search_index(get_settings(), query, batch=batch, limit=limit, as_json=as_json)
    if failed:
        raise typer.Exit(int(failed))


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    selection: Annotated[str | None, typer.Option(help="Highlighted text")] = None,
    page_url: Annotated[str | None, typer.Option(help="The page the reader is on")] = None,
    session: Annotated[str | None, typer.Option(help="Continue this session id")] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            help="FILE or - : one question a line; one JSON output line per non-blank line "
            "(blank lines are skipped)"
        ),
    ] = None,
) -> None:
    """Answer a question from the site, with citations (or decline)."""
    if (question is None) == (batch is None):
        raise _usage("give a QUESTION or --batch FILE")
    if question is not None and not question.strip():
        # The API's 422 code, in words a person at a terminal acts on (not pydantic's).
        raise CliError(
            ErrorCode.VALIDATION_ERROR,
            'the question is empty: bookchat ask "How do I ...?"',
            ExitCode.USAGE,
        )
    if session is not None:
        try:
            uuid.UUID(session)
        except ValueError as error:
            raise _usage("--session must be a session id (UUID)") from error
    from cli.embedded import migrate_embedded
    from cli.queries import ask_all, chat_request, read_lines

    if question is not None:
        chat_request(question, session, selection, page_url)  # refuse bad input before any work
    settings = get_settings()
    questions: list[str | CliError] = (
        [question] if question is not None else list(read_lines(batch or "-"))
    )
    logging.basicConfig(level=logging.WARNING)
    migrate_embedded(settings)
    failed = asyncio.run(
        ask_all(settings, questions, batch is not None, as_json, selection, page_url, session)
    )
    if failed:
        raise typer.Exit(int(failed))


@app.command("eval")
def eval_questions(
    questions: Annotated[Path, typer.Argument(help="Golden questions, one JSON object a line")],
    baseline: Annotated[
        Path | None, typer.Option(help="A saved result (--out): exit 9 on a regression")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the result (JSON) here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Score golden questions against the index and model; compare with a baseline."""
    from cli.eval import (
        read_baseline,
        read_questions,
        regressions,
        render_table,
        run_eval,
        write_result,
    )

    golden = read_questions(questions)
    passed_before = read_baseline(baseline) if baseline is not None else None
    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run_eval(settings, golden))
    regressed = regressions(result, passed_before) if passed_before is not None else None
    if out is not None:
        write_result(out, result.to_json(regressed))
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(regressed), ensure_ascii=False) + "\n")
    else:
        typer.echo(render_table(result, regressed))
    if regressed:
        raise typer.Exit(int(ExitCode.REGRESSION))


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
    from cli.embedded import migrate_embedded
    from cli.report import build_local_report, render
    from shared.report_model import parse_since

    try:
        look_back = parse_since(since)
    except ValueError as error:
        raise _usage(str(error)) from error
    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    migrate_embedded(settings)
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
    site_url: Annotated[
        str | None,
        typer.Option(help="Public URL citations link to (default: the config's url + baseUrl)"),
    ] = None,
    repo: Annotated[str | None, typer.Option(help=_REPO_HELP + " before each ingestion")] = None,
    ref: Annotated[str | None, typer.Option(help="Branch or tag (default: remote HEAD)")] = None,
    subdir: Annotated[
        str | None, typer.Option(help="Folder of the repository with docusaurus.config.*")
    ] = None,
) -> None:
    """Run everything in one process with no service, key or network: API, worker, index."""
    from cli.dev import run_dev

    if site is not None and repo is not None:
        raise _usage("give --site or --repo, not both")
    if site_url is not None and not re.match(r"^https?://[^/\s]+", site_url):
        raise _usage("--site-url must be an absolute http(s) URL, e.g. http://localhost:3000/")
    raise typer.Exit(
        run_dev(site, host=host, port=port, site_url=site_url, repo=repo, ref=ref, subdir=subdir)
    )


@app.command("mcp")
def mcp_stdio(
    url: Annotated[
        str,
        typer.Option(help="The bookchat API the tools call", envvar="BOOKCHAT_API_URL"),
    ] = "http://127.0.0.1:8000",
) -> None:
    """Serve the docs MCP tools (search_docs, ask_docs, get_page) over stdio, for an assistant
    on this machine; they call the bookchat API at --url (`bookchat dev` by default)."""
    from cli.mcp import serve_stdio

    serve_stdio(url)


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
