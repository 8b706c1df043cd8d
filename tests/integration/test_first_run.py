"""The first five minutes and the operator's day, with real processes: `bookchat` as a person
runs it (a subprocess), `bookchat dev` started, killed and restarted, honcho's `web` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BOOKCHAT = [sys.executable, "-c", "from cli.main import main; main()"]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BOOKCHAT_") and key not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(BOOKCHAT_DATA_DIR=str(data_dir), BOOKCHAT_EMBEDDER="hash", **extra)
    return env


def test_search_while_another_process_holds_the_store_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "qdrant").mkdir(parents=True)
    holder = QdrantClient(path=str(data / "qdrant"))  # as `bookchat dev` holds it
    try:
        done = subprocess.run(
            [*BOOKCHAT, "search", "home pose"],
            env=_env(data),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "open in another bookchat process" in done.stderr
