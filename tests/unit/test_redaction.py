"""Secrets never reach a log line (issue 16, items 1 and 8): shared/logging.py's RedactFilter."""

from __future__ import annotations

import logging
import sys

import pytest

from shared.logging import REDACTED, RedactFilter

pytestmark = pytest.mark.unit

KEY = "sk-or-v1-abcdef0123456789abcdef"


def formatted(record: logging.LogRecord, secrets: list[str]) -> str:
    RedactFilter(secrets).filter(record)
    return logging.Formatter("%(message)s").format(record)


def record(msg: str, *args: object, name: str = "worker.chat") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_a_provider_error_echoing_the_key_is_redacted() -> None:
    error = RuntimeError(f"Error code: 401 - {{'error': {{'message': 'Incorrect API key {KEY}'}}}}")
    line = formatted(record("model %s attempt %d failed: %r", "m", 1, error), [KEY])
    assert KEY not in line
    assert REDACTED in line
    assert "attempt 1 failed" in line


def test_configured_secret_values_are_redacted_whatever_their_shape() -> None:
    line = formatted(record("db said: password %s rejected", "hunter2-long"), ["hunter2-long"])
    assert "hunter2-long" not in line


def test_exception_text_is_redacted_too() -> None:
    try:
        raise ValueError(f"upstream echoed {KEY}")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        rec.exc_info = sys.exc_info()
    assert KEY not in formatted(rec, [])


def test_query_values_in_access_lines_are_redacted_but_positions_kept() -> None:
    access = record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/v1/jobs/j?token=eyJabc.def.ghi&wait=25&api_key=xyz123456",
        "1.1",
        200,
        name="uvicorn.access",
    )
    line = formatted(access, [])
    assert "eyJabc" not in line
    assert "xyz123456" not in line
    assert "wait=25" in line
    assert f"token={REDACTED}" in line


def test_the_site_repositorys_token_is_a_redacted_secret() -> None:
    from pydantic import SecretStr

    from shared.settings import Settings

    token = "ghp_0123456789abcdefABCDEF"
    settings = Settings(site_repo=SecretStr(f"https://x-access-token:{token}@github.com/a/b.git"))
    assert token in settings.secret_values()
    line = formatted(record("git said: %s", f"cannot fetch with {token}"), settings.secret_values())
    assert token not in line
