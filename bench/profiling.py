"""py-spy over the benchmark's processes: sample them while a phase runs, then read the top frames
out of the raw (collapsed) profiles."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import PY, Procs


def py_spy_record(out: Path, *target: str) -> list[str]:
    """The py-spy command sampling ``target`` (``--pid N`` or ``-- COMMAND...``) and its
    children 50 times a second without pausing them, raw collapsed stacks to ``out``."""
    spy = shutil.which("py-spy", path=str(Path(PY).parent)) or "py-spy"
    return [
        spy,
        "record",
        "--subprocesses",
        "--format",
        "raw",
        "--rate",
        "50",
        "--nonblocking",
        "-o",
        str(out),
        *target,
    ]


@contextmanager
def profiling(procs: Procs, names: list[str], out_dir: Path) -> Iterator[dict[str, Path]]:
    """py-spy samples the named processes (and their children) while the body runs."""
    spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in names:
        path = out_dir / f"{name}.collapsed"
        spy = subprocess.Popen(
            py_spy_record(path, "--pid", str(procs.started[name].pid)),
            stdout=subprocess.DEVNULL,
            stderr=(out_dir / f"{name}.py-spy.log").open("wb"),
        )
        spies[name] = (spy, path)
    time.sleep(1.0)  # let py-spy attach
    try:
        yield {name: path for name, (_, path) in spies.items()}
    finally:
        for spy, _ in spies.values():
            spy.send_signal(signal.SIGINT)
        for spy, _ in spies.values():
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()


def top_frames(path: Path, n: int = 25) -> dict[str, Any]:
    """The frames that hold the most samples: self time (leaf) and inclusive, idle excluded."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"error": "no profile"}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split("(")[-1] if "(" in f else f
            for f in stack.split(";")
            if not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += count
        leaf[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in leaf.most_common(n)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(n)],
    }


__all__ = ["profiling", "top_frames"]
