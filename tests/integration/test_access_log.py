"""The access log of a real uvicorn process holds no secret, whatever the URL (issue 16, item 1).

The API runs as `python -m uvicorn api.main:app` (the Procfile's command) with uvicorn's own
access log on. A reader asks, polls and streams through the URLs it was given, and a careless
client puts its session token and an API key into query strings. None of those values may
appear in what the process wrote, while the access lines themselves are there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, _port_open
from tests.faults import free_port, stop_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET_KEY = "access-log-secret-0123456789abcdef"
API_KEY = "sk-or-v1-0123456789abcdefDONOTLOG"


@pytest.fixture
def uvicorn_process(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = tmp_path / "uvicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    env.update(
        BOOKCHAT_DATA_DIR=str(tmp_path / "data"),
        BOOKCHAT_REDIS_URL=redis_url,
        BOOKCHAT_DATABASE_URL=postgres_url,
        BOOKCHAT_SECRET_KEY=SECRET_KEY,
        BOOKCHAT_EMBEDDER="hash",
    )
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: _port_open("127.0.0.1", port), timeout=30, what="uvicorn")
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        stop_process(process)


def test_the_access_log_holds_no_token_or_key(uvicorn_process: tuple[str, Path]) -> None:
    base_url, log_path = uvicorn_process
    with httpx.Client(base_url=base_url, timeout=30) as http:
        accepted = http.post("/v1/chat", json={"message": "How do I home the arm?"}).json()
        session_token = accepted["session_token"]
        stream_token = accepted["status_url"].partition("token=")[2]
        assert stream_token, accepted
        secrets = [session_token, stream_token, API_KEY]

        # The reader: polls and streams exactly through the URLs it was given.
        assert http.get(accepted["status_url"]).status_code == 200
        assert http.get(f"{accepted['status_url']}&wait=0").status_code == 200
        with http.stream("GET", accepted["events_url"]) as events:
            assert events.status_code == 200
        # A careless client: secrets in query strings, wherever it likes.
        sid = accepted["session_id"]
        http.get(f"/v1/jobs/{accepted['job_id']}", params={"token": session_token})
        http.get(f"/v1/sessions/{sid}/messages", params={"token": session_token, "x": API_KEY})
        http.get("/healthz", params={"api_key": API_KEY, "session": session_token})
        http.get(f"/v1/jobs/{accepted['job_id']}", params={"wait": "0", "t": stream_token})

    wait_for(lambda: log_path.read_text().count("GET /v1/") >= 5, timeout=10, what="access log")
    text = log_path.read_text(errors="replace")
    assert "GET /v1/jobs/" in text, text
    assert "/events" in text, text
    for secret in secrets:
        assert secret not in text, f"a secret is in the access log:\n{text}"
