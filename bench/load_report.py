"""The reporting of `bench/chat_load.py`: percentiles, a phase's figures, the overhead over the
fake LLM's own time, the progress lines, and a Markdown table from a results file:

    uv run python -m bench.load_report bench/results/chat_load.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.load_models import Sample


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summary(values: list[float]) -> dict[str, float | None]:
    """p50 / p95 / p99 / mean of durations in seconds, in ms."""
    ms = [v * 1000 for v in values]
    return {
        "p50_ms": _r(pct(ms, 50)),
        "p95_ms": _r(pct(ms, 95)),
        "p99_ms": _r(pct(ms, 99)),
        "mean_ms": _r(statistics.fmean(ms)) if ms else None,
    }


def phase_info(
    samples: list[Sample],
    *,
    wall_s: float,
    load_before: float,
    load_after: float,
    cpu_s: dict[str, float],
) -> dict[str, Any]:
    """A phase's figures: counts, answers/s, latencies, and each process's CPU per answer (the
    driver is the bench process: the load generator, and the agent itself in `floor`)."""
    ok = [s for s in samples if s.ok]
    info: dict[str, Any] = {
        "requests": len(samples),
        "ok": len(ok),
        "errors": dict(Counter(s.error for s in samples if not s.ok)),
        "wall_s": round(wall_s, 2),
        "answers_per_s": round(len(ok) / wall_s, 2),
        "load_before": load_before,
        "load_after": load_after,
        "total": summary([s.total_s for s in ok]),
        "ttft": summary([s.ttft_s for s in ok if s.ttft_s is not None]),
        "cpu_ms_per_answer": {
            name: round(1000 * seconds / max(1, len(ok)), 1) for name, seconds in cpu_s.items()
        },
    }
    submits = [s.submit_s for s in ok if s.submit_s is not None]
    if submits:
        info["submit"] = summary(submits)
    return info


def llm_medians(samples: list[Sample]) -> tuple[dict[int, float], dict[int, float]]:
    """The LLM's own median total time and time to first token, per question."""
    by_q_total: dict[int, list[float]] = defaultdict(list)
    by_q_ttft: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        if s.ok:
            by_q_total[s.question].append(s.total_s)
            if s.ttft_s is not None:
                by_q_ttft[s.question].append(s.ttft_s)
    return (
        {q: statistics.median(v) for q, v in by_q_total.items()},
        {q: statistics.median(v) for q, v in by_q_ttft.items()},
    )


def overheads(
    samples: list[Sample], llm_total: dict[int, float], llm_ttft: dict[int, float]
) -> dict[str, Any]:
    """Each request's time minus the LLM's own median time for the same question."""
    ok = [s for s in samples if s.ok and s.question in llm_total]
    total = [s.total_s - llm_total[s.question] for s in ok]
    ttft = [
        s.ttft_s - llm_ttft[s.question]
        for s in ok
        if s.ttft_s is not None and s.question in llm_ttft
    ]
    return {"total": summary(total), "ttft": summary(ttft)}


def phase_line(readers: int, name: str, info: dict[str, Any]) -> str:
    """One progress line for stderr."""
    if "overhead" not in info:
        return (
            f"c={readers:<4} {name:<6} total p50 {info['total']['p50_ms']} "
            f"p95 {info['total']['p95_ms']}"
        )
    return (
        f"c={readers:<4} {name:<6} total p50 {info['total']['p50_ms']} "
        f"p95 {info['total']['p95_ms']}  overhead p50 "
        f"{info['overhead']['total']['p50_ms']} p95 {info['overhead']['total']['p95_ms']}"
        f" ttft-overhead p95 {info['overhead']['ttft']['p95_ms']} ok "
        f"{info['ok']}/{info['requests']} {info['answers_per_s']}/s "
        f"load {info['load_after']} cpu {info['cpu_ms_per_answer']}"
    )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def markdown(report: dict[str, Any]) -> str:
    """The results of one run as a Markdown table: one row per readers x way."""
    setup = report.get("setup", {})
    lines = [
        f"`{report.get('command', '')}`",
        "",
        f"Site: {setup.get('site', 'sample')}; load model: "
        f"{setup.get('load_model', 'closed loop')}.",
        "",
        "| readers | way | answers/s | overhead p50 / p95 / p99 ms | first-token overhead "
        "p50 / p95 ms | total p50 / p95 ms | CPU ms/answer | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for readers, level in report["results"].items():
        for way, info in level.items():
            if way == "rss":
                continue
            over = info.get("overhead")
            overhead = (
                " / ".join(_ms(over["total"][k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
                if over
                else "—"
            )
            first = (
                " / ".join(_ms(over["ttft"][k]) for k in ("p50_ms", "p95_ms"))
                if over and way != "sync"
                else "—"
            )
            cpu = ", ".join(
                f"{name} {ms:g}"
                for name, ms in info.get("cpu_ms_per_answer", {}).items()
                if ms >= 0.5 and name not in ("redis",)
            )
            lines.append(
                f"| {readers} | {way} | {info['answers_per_s']} | {overhead} | {first} | "
                f"{_ms(info['total']['p50_ms'])} / {_ms(info['total']['p95_ms'])} | {cpu} | "
                f"{info['load_before']} → {info['load_after']} |"
            )
    return "\n".join(lines)


def side_by_side(report: dict[str, Any]) -> str:
    """One row per concurrency: the ways side by side (answers/s, overhead p50 / p95 ms), the
    stack's throughput against the synchronous endpoint's, and the load average."""
    ways = [
        w for w in ("floor", "sync", "stack") if any(w in lv for lv in report["results"].values())
    ]
    head = (
        " | ".join(f"{w} answers/s" for w in ways)
        + " | "
        + " | ".join(f"{w} overhead p50 / p95" for w in ways)
    )
    lines = [
        f"| readers | {head} | stack / sync | load avg |",
        "|---|" + "---|" * (2 * len(ways) + 2),
    ]
    for readers, level in report["results"].items():
        rates = " | ".join(str(level[w]["answers_per_s"]) if w in level else "—" for w in ways)
        over = " | ".join(
            " / ".join(_ms(level[w]["overhead"]["total"][k]) for k in ("p50_ms", "p95_ms"))
            if w in level
            else "—"
            for w in ways
        )
        ratio = (
            f"{level['stack']['answers_per_s'] / level['sync']['answers_per_s']:.2f}"
            if "stack" in level and "sync" in level
            else "—"
        )
        loads = [info["load_before"] for info in level.values()] + [
            info["load_after"] for info in level.values()
        ]
        lines.append(
            f"| {readers} | {rates} | {over} | {ratio} | {min(loads):.1f}–{max(loads):.1f} |"
        )
    return "\n".join(lines)


def rss_markdown(report: dict[str, Any]) -> str:
    """Resident memory (MiB) of each process: idle as started, idle once warmed up, and under
    the `stack` phase at each concurrency (median / peak of the samples), then VmHWM."""
    rss = report.get("rss")
    if not rss:
        return ""
    names = list(rss.get("hwm_mib", {}))
    columns = ["idle (started)", "idle (warmed up)"] + [
        label for label in rss if label.startswith("stack ")
    ]
    head = " | ".join(f"{c} median / peak" for c in columns)
    lines = [
        f"| process | {head} | peak since start (VmHWM) |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for name in names:
        cells = []
        for column in columns:
            figures = rss.get(column, {}).get(name)
            cells.append(
                f"{figures['median_mib']:.0f} / {figures['peak_mib']:.0f}" if figures else "—"
            )
        lines.append(f"| {name} | {' | '.join(cells)} | {rss['hwm_mib'][name]:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A chat_load results file as a Markdown table")
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args(argv)
    for path in args.results:
        report = json.loads(path.read_text())
        parts = [markdown(report), side_by_side(report), rss_markdown(report)]
        sys.stdout.write("\n\n".join(parts) + "\n\n")


__all__ = [
    "llm_medians",
    "markdown",
    "overheads",
    "pct",
    "phase_info",
    "phase_line",
    "rss_markdown",
    "side_by_side",
    "summary",
]

if __name__ == "__main__":
    main()
