"""How the `bookchat` command fails: one line a person can act on, a distinct exit code per kind
of failure, `{"error": {"code", "message"}}` on stdout under `--json`, and a traceback only with
`--debug` (or `-v`).

Every command raises; `cli.main.main` turns whatever escaped into a `Failure` with `describe` and
prints it with `report_failure`. A command that goes on after a failure (a `--batch` line) calls
`describe` itself and prints `error_object(failure)` in place of that line's result.

Exit codes (also in README.md):

====  ==================  ==============================================================
code  kind                e.g.
====  ==================  ==============================================================
0     success
1     internal_error      a bug: rerun with --debug and report the traceback
2     usage_error         a bad option or argument (click's own code)
3     index               no index yet, index being built, store held by another process
4     service             Redis or the database cannot be reached
5     llm                 the model endpoint failed or answered nonsense
6     not_found           the site folder, a batch file, a job or a session does not exist
7     ingest_failed       the ingestion itself failed
8     already_running     `bookchat dev` already runs on this data dir
130   interrupted         Ctrl-C
====  ==================  ==============================================================
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import typer

from shared.errors import BookchatError, ErrorCode

__all__ = [
    "CliError",
    "ExitCode",
    "Failure",
    "describe",
    "error_object",
    "report_failure",
]


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    INDEX = 3
    SERVICE = 4
    LLM = 5
    NOT_FOUND = 6
    INGEST_FAILED = 7
    ALREADY_RUNNING = 8
    REGRESSION = 9  # `bookchat eval`: a question that passed in the baseline fails now
    INTERRUPTED = 130


#: Codes the command line adds to the API's stable codes (shared.errors.ErrorCode).
USAGE_ERROR = "usage_error"
INTERRUPTED = "interrupted"
ALREADY_RUNNING = "already_running"

_EXIT_OF_CODE: dict[str, ExitCode] = {
    ErrorCode.INDEX_UNAVAILABLE: ExitCode.INDEX,
    ErrorCode.INDEX_EMPTY: ExitCode.INDEX,
    ErrorCode.INDEX_BUILDING: ExitCode.INDEX,
    ErrorCode.QUEUE_UNAVAILABLE: ExitCode.SERVICE,
    ErrorCode.DATABASE_UNAVAILABLE: ExitCode.SERVICE,
    ErrorCode.LLM_UNAVAILABLE: ExitCode.LLM,
    ErrorCode.LLM_BAD_RESPONSE: ExitCode.LLM,
    ErrorCode.LLM_OUT_OF_CREDITS: ExitCode.LLM,
    ErrorCode.LLM_QUOTA_EXHAUSTED: ExitCode.LLM,
    ErrorCode.LLM_MODEL_NOT_FOUND: ExitCode.LLM,
    ErrorCode.NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorCode.SITE_NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorCode.JOB_NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorCode.SESSION_NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorCode.MESSAGE_NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorCode.INGEST_FAILED: ExitCode.INGEST_FAILED,
    ErrorCode.REPO_FETCH_FAILED: ExitCode.INGEST_FAILED,
    ErrorCode.VALIDATION_ERROR: ExitCode.USAGE,
    USAGE_ERROR: ExitCode.USAGE,
    ALREADY_RUNNING: ExitCode.ALREADY_RUNNING,
    INTERRUPTED: ExitCode.INTERRUPTED,
}


class CliError(Exception):
    """A failure the command line reports as it is (code, message, exit code)."""

    def __init__(self, code: str, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.exit_code = exit_code or _EXIT_OF_CODE.get(str(code), ExitCode.INTERNAL)


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str
    exit_code: ExitCode


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(error: BaseException) -> Failure:
    """What to tell a person about `error`: a stable code, one line, an exit code."""
    if isinstance(error, CliError):
        return Failure(error.code, error.message, error.exit_code)
    if isinstance(error, BookchatError):
        code = str(error.code)
        return Failure(code, error.message, _EXIT_OF_CODE.get(code, ExitCode.INTERNAL))
    if isinstance(error, typer.TyperException):  # click's (vendored by typer) usage errors
        if not error.format_message().strip():  # no arguments: the help was printed
            return Failure(USAGE_ERROR, "", ExitCode.USAGE)
        context = getattr(error, "ctx", None)
        command = getattr(context, "command_path", None) or "bookchat"
        message = f"{error.format_message()} (see `{command} --help`)"
        if error.exit_code == ExitCode.USAGE:
            return Failure(USAGE_ERROR, message, ExitCode.USAGE)
        return Failure(str(ErrorCode.INTERNAL_ERROR), message, ExitCode.INTERNAL)
    if isinstance(error, (KeyboardInterrupt, typer.Abort)):
        return Failure(INTERRUPTED, "interrupted", ExitCode.INTERRUPTED)
    return _describe_library_error(error)


def _describe_library_error(error: BaseException) -> Failure:
    """Failures raised by the services' client libraries, named by what to do about them."""
    import httpx
    import pydantic
    import redis.exceptions
    from qdrant_client.http.exceptions import ResponseHandlingException
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, pydantic.ValidationError) and error.title == "Settings":
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        return Failure(
            USAGE_ERROR,
            f"invalid settings ({problems}); see .env.example",
            ExitCode.USAGE,
        )
    if isinstance(error, pydantic.ValidationError):
        # A request model (e.g. `ChatRequest`) refused what the command line gave it: the same
        # `validation_error` the API answers with a 422.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()
        )
        return Failure(str(ErrorCode.VALIDATION_ERROR), problems, ExitCode.USAGE)
    if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return Failure(
            str(ErrorCode.QUEUE_UNAVAILABLE),
            f"Redis is unreachable ({_first_line(error)}): start it and set REDIS_URL, or run "
            "`bookchat dev`, which starts its own",
            ExitCode.SERVICE,
        )
    if isinstance(error, DBAPIError) or type(error).__module__.startswith("asyncpg"):
        return Failure(
            str(ErrorCode.DATABASE_UNAVAILABLE),
            f"the database is unreachable or refused the query ({_first_line(error)}); "
            "check DATABASE_URL",
            ExitCode.SERVICE,
        )
    if isinstance(error, (ResponseHandlingException, httpx.TransportError)):
        return Failure(
            str(ErrorCode.INDEX_UNAVAILABLE),
            f"the Qdrant server is unreachable ({_first_line(error)}); check QDRANT_URL",
            ExitCode.INDEX,
        )
    if isinstance(error, FileNotFoundError):
        return Failure(
            str(ErrorCode.NOT_FOUND),
            f"no such file or folder: {error.filename or _first_line(error)}",
            ExitCode.NOT_FOUND,
        )
    return Failure(
        str(ErrorCode.INTERNAL_ERROR),
        f"unexpected {type(error).__name__}: {_first_line(error)} "
        "(rerun with --debug for the traceback, and please report it)",
        ExitCode.INTERNAL,
    )


def error_object(failure: Failure) -> dict[str, Any]:
    """The JSON a `--json` command prints instead of its result."""
    return {"error": {"code": failure.code, "message": failure.message}}


def report_failure(error: BaseException, *, as_json: bool, debug: bool) -> ExitCode:
    """Print `error` for a person (stderr, one line) or a program (stdout, JSON); returns the
    exit code. With `debug`, the traceback goes to stderr first."""
    failure = describe(error)
    if debug and failure.exit_code not in (ExitCode.USAGE, ExitCode.INTERRUPTED):
        traceback.print_exception(error, file=sys.stderr)
    if as_json:
        sys.stdout.write(json.dumps(error_object(failure), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif failure.message:
        typer.secho(f"error: {failure.message}", err=True, fg="red")
    return failure.exit_code
