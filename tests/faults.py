"""Fault injection for the integration tests: a Redis the test can stop and restart, a TCP path
to a service the test can cut, worker processes the test can kill.

Everything here is bounded in time: every wait takes a timeout and fails loudly when it passes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import ROOT, _port_open

__all__ = [
    "PrivateRedis",
    "TcpProxy",
    "child_pids",
    "free_port",
    "start_procfile_worker",
    "start_worker",
    "stop_process",
    "wait_for",
]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str = ""
) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


class PrivateRedis:
    """A redis-server of the test's own on a free port, with an AOF fsynced on every write (so
    a restart loses nothing that was acknowledged), that the test can stop and restart."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or pytest.skip("redis-server not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: _port_open("127.0.0.1", self.port), timeout=10, what="redis-server")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (clean shutdown) or SIGKILL (a crash)."""
        if self.process is not None:
            stop_process(self.process, kill=kill)
            self.process = None


class TcpProxy:
    """A loopback TCP forwarder to `target_port` that the test can cut (every open connection
    reset, new ones refused) and restore on the same port: "the service went away"."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(100)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def start_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    pool: str = "threads",
    concurrency: int = 2,
    queues: str = "chat,ingest",
    name: str = "fault",
) -> subprocess.Popen[bytes]:
    """A Celery worker process with the stack's environment (`Stack.env`)."""
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    worker_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
         "-P", pool, "-c", str(concurrency), "-Q", queues, "--without-mingle",
         "--without-gossip", "-n", f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h",
         "--loglevel", "INFO"],
        cwd=ROOT, env=worker_env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def start_procfile_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The chat worker as the Procfile starts it (`bookchat worker --queues chat`: Celery's own
    defaults for mingle, gossip and heartbeats, a pool of 4), with the stack's environment."""
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCHAT_", "OPENAI_"))}
    worker_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--queues", "chat"],
        cwd=ROOT, env=worker_env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc): a prefork worker's pool processes."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children += [int(child) for child in text]
    return children


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """SIGKILL, or SIGTERM then SIGKILL after 15 s; reaps the process either way."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Stop (SIGTERM, then SIGKILL) a process the test started, whatever happens."""
    try:
        yield process
    finally:
        stop_process(process)
