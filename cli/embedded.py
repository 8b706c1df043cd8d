"""The embedded default's services: a private redis-server under BOOKCHAT_DATA_DIR."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

__all__ = ["PrivateRedis", "start_private_redis"]


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
