"""Security on the real stack (issue 8): admin routes and the webhook refuse bad credentials, and
no secret shows up in logs, error bodies, job results, events or /metrics.

Flower's auth is tested in test_operations.py; one session reading another's jobs and history
in test_jobs_api.py; the ingester staying inside the site root in tests/unit/test_fuzzed_site.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from shared.settings import Settings
from tests.fake_llm import FakeLLM, error
from tests.faults import free_port, wait_for
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRETS = {
    "BOOKCHAT_ADMIN_TOKEN": "admin-TOKEN-do-not-leak-1a2b3c4d",
    "BOOKCHAT_SECRET_KEY": "secret-KEY-do-not-leak-5e6f7a8b",
    "BOOKCHAT_WEBHOOK_SECRET": "webhook-SECRET-do-not-leak-9c0d",
    "BOOKCHAT_LLM_API_KEY": "sk-llm-KEY-do-not-leak-e1f2a3b4",
    "QDRANT_API_KEY": "qdrant-KEY-do-not-leak-c5d6e7f8",
}
DB_PASSWORD = "db-PASSWORD-do-not-leak-0912"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


def test_credentials_are_required_and_no_secret_leaks(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # the API (in this process) reads them from the env
    # Postgres here trusts local connections, so the password is carried but never checked.
    db_url = postgres_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    capture = Capture()
    bodies: list[str] = []
    with FakeLLM(api_key=SECRETS["BOOKCHAT_LLM_API_KEY"]) as fake:
        stack = make_stack(
            BOOKCHAT_LLM_BASE_URL=fake.base_url, BOOKCHAT_DATABASE_URL=db_url, **SECRETS
        )
        logging.getLogger().addHandler(capture)
        try:
            http = stack.http
            # Admin: no token, a wrong one, a scheme mix-up.
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": SECRETS["BOOKCHAT_ADMIN_TOKEN"]},
                {"Authorization": f"Basic {SECRETS['BOOKCHAT_ADMIN_TOKEN']}"},
            ):
                response = http.post("/v1/ingestions", json={}, headers=headers)
                assert response.status_code == 401, (headers, response.text)
                bodies.append(response.text)
            right = {"Authorization": f"Bearer {SECRETS['BOOKCHAT_ADMIN_TOKEN']}"}
            response = http.post("/v1/ingestions", json={}, headers=right)
            assert response.status_code == 202, response.text
            ingest = response.json()
            bodies.append(response.text)

            # Webhook: no signature, a wrong one, one made with another secret.
            body = b'{"ref": "refs/heads/main"}'
            good = hmac.new(SECRETS["BOOKCHAT_WEBHOOK_SECRET"].encode(), body, hashlib.sha256)
            bad = hmac.new(b"another-secret", body, hashlib.sha256)
            for signature in (None, "sha256=00", f"sha256={bad.hexdigest()}", good.hexdigest()):
                headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
                if signature:
                    headers["X-Hub-Signature-256"] = signature
                response = http.post("/v1/hooks/reindex", content=body, headers=headers)
                assert response.status_code == 401, (signature, response.text)
                bodies.append(response.text)

            # A job that succeeds, and one whose model fails (error paths log the most).
            ok = stack.chat("How do I send the arm to its home pose?")
            done = stack.wait(ok["status_url"], timeout=60)
            assert done["status"] == "succeeded", (done, stack.log())
            fake.respond = lambda _: error(500, message="upstream exploded")
            failing = stack.chat("How do I calibrate the gripper?")
            failed = stack.wait(failing["status_url"], timeout=120)
            assert failed["status"] == "failed", failed
            fake.respond = None
            if "status_url" in ingest:
                bodies.append(str(stack.wait(ingest["status_url"], timeout=60)))
            for accepted in (ok, failing):
                bodies.append(http.get(accepted["status_url"]).text)
                with http.stream("GET", accepted["events_url"]) as events:
                    bodies.append("".join(events.iter_text()))
            bodies.append(http.get("/metrics").text)
            bodies.append(http.get("/readyz").text)
            bodies.append(http.get("/v1/jobs/00000000-0000-0000-0000-000000000000").text)
            bodies.append(http.post("/v1/chat", content=b"{nope").text)
        finally:
            logging.getLogger().removeHandler(capture)
    # The fake LLM saw the key (it checks it): the secret values are really in use.
    assert fake.requests
    places = {
        "worker log": stack.worker_log.read_text(errors="replace"),
        "API logs": "\n".join(capture.lines),
        "HTTP bodies": "\n".join(bodies),
    }
    assert places["worker log"].strip(), "the worker wrote no log"
    for secret in [*SECRETS.values(), DB_PASSWORD]:
        for place, text in places.items():
            assert secret not in text, f"{secret} leaked into the {place}"


# --- hostile clients against a real uvicorn server ---------------------------------------------


@pytest.fixture
def live_api(settings: Settings) -> Iterator[tuple[str, int]]:
    from api.main import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning",
            timeout_keep_alive=5,
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15, what="uvicorn")
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def raw_exchange(
    address: tuple[str, int], chunks: list[bytes], pause_s: float, limit_s: float
) -> bytes:
    """Send `chunks` with `pause_s` between them; what the server answered within `limit_s`
    (b"" if it closed without answering). Stops sending once the server answers or closes."""
    deadline = time.monotonic() + limit_s
    with socket.create_connection(address, timeout=limit_s) as sock:
        sock.setblocking(False)
        received = b""
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            pause_until = time.monotonic() + pause_s
            while time.monotonic() < min(pause_until, deadline):
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    time.sleep(0.05)
                    continue
                except OSError:
                    return received
                if not data:
                    return received
                received += data
            if received or time.monotonic() >= deadline:
                return received
        sock.setblocking(True)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            received += sock.recv(65536)
        return received


def test_deep_json_nesting_is_a_4xx(live_api: tuple[str, int]) -> None:
    host, port = live_api
    depth = 30_000  # 60 KB: under the body limit, far past any parser's recursion limit
    body = b'{"message": ' + b"[" * depth + b"]" * depth + b"}"
    response = httpx.post(
        f"http://{host}:{port}/v1/chat", content=body,
        headers={"Content-Type": "application/json"}, timeout=10,
    )  # fmt: skip
    assert 400 <= response.status_code < 500, response.text[:300]
    assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200


def test_huge_headers_leave_the_server_up(live_api: tuple[str, int]) -> None:
    """uvicorn's default parser (httptools) sets no header size limit, so a 200 KB header is
    served (h11 would refuse it past 16 KB): the bound belongs to the proxy in front (see
    docs/operations.md, Reliability). What the app must do: not fail, and stay up."""
    host, port = live_api
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    answer = raw_exchange(live_api, [request], pause_s=0, limit_s=10)
    assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200


def test_slow_loris_body_is_cut_off(live_api: tuple[str, int]) -> None:
    """A client announcing a body and trickling it a byte a second is not served forever."""
    head = (
        b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_exchange(live_api, [head] + [b" "] * 60, pause_s=1.0, limit_s=40)
    took = time.monotonic() - started
    assert took < 35, "the server kept reading a trickling body"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    host, port = live_api
    assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200


def test_a_provider_echoing_the_key_does_not_put_it_in_the_worker_log(
    make_stack: Callable[..., Stack],
) -> None:
    """Issue 16, item 8: the model server's error body carries the API key (some gateways echo
    the request's credentials); the worker logs the failure without the key."""
    key = SECRETS["BOOKCHAT_LLM_API_KEY"]
    with FakeLLM(api_key=key) as fake:
        stack = make_stack(BOOKCHAT_LLM_BASE_URL=fake.base_url, BOOKCHAT_LLM_API_KEY=key)
        fake.respond = lambda _: error(400, message=f"Invalid request for key {key}: bad model")
        failing = stack.chat("How do I calibrate the gripper?")
        failed = stack.wait(failing["status_url"], timeout=120)
        assert failed["status"] == "failed", failed
        assert key not in str(failed)
    log = stack.worker_log.read_text(errors="replace")
    assert "[redacted]" in log, log[-3000:]  # the failure was logged, with the key taken out
    assert key not in log, log[-3000:]


def test_a_hostile_question_does_not_hold_up_another_readers_answer(
    make_stack: Callable[..., Stack],
) -> None:
    """Issue 30, item 1: runs of newlines made the injection guard backtrack for hours on the
    worker's one event loop. Here the hostile question (the API's limits: 4,000 characters of
    message, 8,000 of selection) is screened and then held at the model, and another reader's
    question is answered meanwhile, on the same worker: the order of events shows it."""
    hostile_message = "Hi" + "\n" * 3980 + "how do I install?"

    def is_hostile(body: dict[str, Any]) -> bool:
        return "\n" * 1000 in "".join(str(m.get("content") or "") for m in body["messages"])

    release = threading.Event()

    async def hold_the_hostile_one(body: dict[str, Any]) -> None:
        if is_hostile(body):
            await asyncio.to_thread(release.wait, 120)
        # then the default reply

    with FakeLLM(respond=hold_the_hostile_one) as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        hostile = stack.chat(hostile_message, selection="\n" * 8000)
        other = stack.chat("How do I send the arm to its home pose?")
        answered = stack.wait(other["status_url"], timeout=120)
        assert answered["status"] == "succeeded", (answered, stack.log())
        assert answered["result"]["refused"] is False
        still = stack.http.get(hostile["status_url"]).json()
        assert still["status"] == "running", still  # screened, and waiting for its model
        assert sum(map(is_hostile, fake.requests)) == 1
        release.set()
        finished = stack.wait(hostile["status_url"], timeout=120)
        assert finished["status"] == "succeeded", (finished, stack.log())
