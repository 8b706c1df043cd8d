"""The embedded default's services: a private redis-server under BOOKCHAT_DATA_DIR, the
record (`<data_dir>/dev.json`) of where a running `bookchat dev` serves them, which the
operator commands (`bookchat jobs`, `bookchat sites`, ...) read to find it, and the embedded
SQLite database, migrated on first use."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "DevServices",
    "migrate_embedded",
    "PrivateRedis",
    "pid_alive",
    "process_start",
    "running_dev",
    "start_private_redis",
    "stop_orphan_redis",
]

RECORD_NAME = "dev.json"


@dataclass
class PrivateRedis:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass(frozen=True, slots=True)
class DevServices:
    """Where a `bookchat dev` process serves: written at start, removed at a clean exit.

    A record left by a killed process (its `pid` is gone) tells the next `bookchat dev` which
    redis-server to stop."""

    pid: int
    api_url: str
    redis_url: str | None
    redis_pid: int | None
    site_dir: str
    site_name: str
    started_at: float
    pid_start: int | None = None  # the process's start time (/proc), against pid reuse

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / RECORD_NAME

    def save(self, data_dir: Path) -> None:
        target = self.path(data_dir)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(target)

    @classmethod
    def load(cls, data_dir: Path) -> DevServices | None:
        try:
            raw = json.loads(cls.path(data_dir).read_text(encoding="utf-8"))
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def forget(cls, data_dir: Path, pid: int) -> None:
        """Remove the record if it is still `pid`'s."""
        record = cls.load(data_dir)
        if record is not None and record.pid == pid:
            cls.path(data_dir).unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_alive(pid: int | None, *, named: str | None = None) -> bool:
    """Whether process `pid` runs (and, where /proc tells, has `named` in its command line)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if named is None or not Path("/proc").is_dir():
        return True
    cmdline = _cmdline(pid)
    return not cmdline or named in cmdline  # a zombie has an empty command line


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, from /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    return int(stat.rsplit(")", 1)[1].split()[19])


def running_dev(data_dir: Path) -> DevServices | None:
    """The `bookchat dev` serving this data dir, if it is still alive (the same process, not
    a later one that got its pid)."""
    record = DevServices.load(data_dir)
    if record is None or not pid_alive(record.pid):
        return None
    if record.pid_start is not None and process_start(record.pid) != record.pid_start:
        return None
    return record


def stop_orphan_redis(record: DevServices, timeout_s: float = 10.0) -> bool:
    """Stop the private redis-server a killed `bookchat dev` left running (its data is on disk:
    SHUTDOWN writes the append-only file first). True if one was stopped."""
    pid = record.redis_pid
    if not pid_alive(pid, named="redis-server"):
        return False
    assert pid is not None
    if record.redis_url:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(record.redis_url, socket_timeout=2).shutdown()
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid, named="redis-server") and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid, named="redis-server"):
        os.kill(pid, signal.SIGTERM)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_private_redis(data_dir: Path) -> PrivateRedis:
    """Start redis-server on a free loopback port, data and log under data_dir.

    AOF is on so queued jobs survive a restart of `bookchat dev`.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server was not found. Install it (Debian/Ubuntu: apt-get install "
            "redis-server; macOS: brew install redis) or set REDIS_URL to a running Redis."
        )
    directory = (data_dir / "redis").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--logfile",
            str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start; see {directory}/redis.log"
                ) from error
            time.sleep(0.05)
    client.close()
    return PrivateRedis(process, url)


def migrate_embedded(settings: Settings) -> None:
    """The embedded SQLite database is created and migrated on first use."""
    if settings.database_url is None:
        from shared.migrate import upgrade_database

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_database(settings.effective_database_url)
