"""Log format and the job context every log line inside a job carries.

`BOOKCHAT_LOG_JSON=true` gives one JSON object per line (for a log shipper); otherwise a human
line. Inside a job, every line carries `job_id` and `session_id`: the API sets them when it
enqueues, the worker when a task starts (from the task's kwargs and headers, see
`worker/celery_app.py`), and `JobContextFilter` copies them onto each record. They live in
contextvars, so they follow the code into the worker's event-loop thread and
`asyncio.to_thread` without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "JobContextFilter",
    "JsonFormatter",
    "RedactFilter",
    "bind_job_context",
    "configure_logging",
    "current_job_context",
    "job_context",
]

job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "session_id", default=None
)

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(job_context)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "job_context",
}


def bind_job_context(job_id: str | None, session_id: str | None = None) -> None:
    """Set the job context for the rest of the current task or request."""
    job_id_var.set(job_id)
    session_id_var.set(session_id)


def current_job_context() -> tuple[str | None, str | None]:
    return job_id_var.get(), session_id_var.get()


@contextmanager
def job_context(job_id: str | None, session_id: str | None = None) -> Iterator[None]:
    """The job context for a block, restored afterwards."""
    job_token = job_id_var.set(job_id)
    session_token = session_id_var.set(session_id)
    try:
        yield
    finally:
        job_id_var.reset(job_token)
        session_id_var.reset(session_token)


class JobContextFilter(logging.Filter):
    """Puts `job_id` and `session_id` on every record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None) or job_id_var.get()
        session_id = getattr(record, "session_id", None) or session_id_var.get()
        record.job_id = job_id
        record.session_id = session_id
        parts = [
            f"{name}={value}" for name, value in (("job", job_id), ("session", session_id)) if value
        ]
        record.job_context = f" [{' '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job context, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "session_id": getattr(record, "session_id", None),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:  # set (and cleaned) by RedactFilter
            entry["exc_info"] = record.exc_text
        elif record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


#: Query parameters whose values are kept in logs (positions and waits, never credentials).
_HARMLESS_PARAMS = frozenset({"wait", "after", "limit"})
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&#\s\"'?]{1,64})=(?P<value>[^&#\s\"']*)")
_SECRET_SHAPES = re.compile(
    r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"  # a JWT (our session and stream tokens)
    r"|\bsk-[\w-]{12,}"  # OpenAI / OpenRouter style API keys
    r"|(?i:\bbearer\s+)[\w.~+/=-]{8,}"  # an Authorization header value
)
REDACTED = "[redacted]"


class RedactFilter(logging.Filter):
    """Removes secrets from every record before a handler formats it (issue 16): the values of
    URL query parameters (the access log's `?token=…`, whatever the URL), JWT- and API-key-shaped
    strings, and the deployment's own secret values (`Settings.secret_values()`), also inside
    exception text (a provider echoing the key in its error body)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def clean(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _SECRET_SHAPES.sub(REDACTED, text)
        return _QUERY_PARAM.sub(self._param, text)

    @staticmethod
    def _param(match: re.Match[str]) -> str:
        if match.group("name").lower() in _HARMLESS_PARAMS or not match.group("value"):
            return match.group(0)
        return f"{match.group('sep')}{match.group('name')}={REDACTED}"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.name.startswith("uvicorn"):
            # uvicorn's formatters read the args themselves (client, method, path...).
            record.args = tuple(self.clean(a) if isinstance(a, str) else a for a in record.args)
        else:
            message = record.getMessage()
            cleaned = self.clean(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


def make_handler(*, json: bool, secrets: Iterable[str] = ()) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactFilter(secrets))
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(HUMAN_FORMAT))
    return handler


def configure_logging(
    *, level: str = "INFO", json: bool = False, secrets: Iterable[str] = ()
) -> None:
    """Replace the root logger's handlers with one in the chosen format, and redact secrets
    (`RedactFilter`) there and in uvicorn's own handlers (its access log). Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bookchat", False):
            root.removeHandler(handler)
    handler = make_handler(json=json, secrets=secrets)
    handler._bookchat = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request at INFO ("HTTP Request: POST .../chat/completions 200"): two
    # lines per answer that say nothing our own job lines do not, and CPU under load. Kept
    # at DEBUG.
    # (the openai client's own HTTP library is httpx2).
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(
            logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
        )
    redact = RedactFilter(secrets)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        for uvicorn_handler in logging.getLogger(name).handlers:
            for old in [f for f in uvicorn_handler.filters if isinstance(f, RedactFilter)]:
                uvicorn_handler.removeFilter(old)
            uvicorn_handler.addFilter(redact)
