"""The load models and the figures of bench/chat_load.py: who asks what when, and what counts."""

from __future__ import annotations

import asyncio

import pytest

from bench.load_models import ClosedLoop, Sample, ThinkTime, parse_think
from bench.load_report import llm_medians, overheads, pct

pytestmark = pytest.mark.unit


def test_think_times_are_seeded_per_reader_and_within_bounds() -> None:
    model = ThinkTime(rounds=4, low_s=10, high_s=20, seed=7)
    pauses = model.pauses(3)
    assert pauses == ThinkTime(rounds=4, low_s=10, high_s=20, seed=7).pauses(3)
    assert pauses != model.pauses(4)
    assert pauses != ThinkTime(rounds=4, low_s=10, high_s=20, seed=8).pauses(3)
    assert len(pauses) == 4
    assert 0 <= pauses[0] <= 20  # a random point of a first think time
    assert all(10 <= p <= 20 for p in pauses[1:])


def test_parse_think() -> None:
    assert parse_think("10-20") == (10.0, 20.0)
    assert parse_think("0.5") == (0.5, 0.5)
    with pytest.raises(ValueError, match="LOW-HIGH"):
        parse_think("20-10")


@pytest.mark.parametrize(
    "model", [ClosedLoop(rounds=3, stagger_s=0), ThinkTime(rounds=3, low_s=0, high_s=0)]
)
def test_each_reader_asks_its_questions_in_turn_and_failures_are_counted(
    model: ClosedLoop | ThinkTime,
) -> None:
    asked: list[int] = []

    async def one(q: int) -> Sample:
        asked.append(q)
        if q == 2:
            raise RuntimeError("boom")
        return Sample(q, 0.1, 0.05)

    samples = asyncio.run(model.run(2, 4, one))
    assert sorted(asked) == [0, 1, 1, 2, 2, 3]  # reader i asks (i + r) mod 4
    failed = [s for s in samples if not s.ok]
    assert [s.question for s in failed] == [2, 2]
    assert all("boom" in (s.error or "") for s in failed)


def test_overhead_is_time_minus_the_llm_median_for_the_same_question() -> None:
    llm = [Sample(0, 1.0, 0.5), Sample(0, 3.0, 0.7), Sample(1, 2.0, None)]
    total, ttft = llm_medians(llm)
    assert total == {0: 2.0, 1: 2.0}
    assert ttft == {0: 0.6}
    measured = [Sample(0, 2.1, 0.65), Sample(1, 2.3, 0.9), Sample(1, 9.0, None, ok=False)]
    over = overheads(measured, total, ttft)
    assert over["total"]["p50_ms"] == pytest.approx(100.0, abs=0.2)
    assert over["total"]["p95_ms"] == pytest.approx(300.0, abs=0.2)
    assert over["ttft"]["p50_ms"] == pytest.approx(50.0, abs=0.2)  # question 1: no LLM ttft


def test_pct_picks_the_nearest_rank() -> None:
    assert pct([], 50) is None
    assert pct([3.0, 1.0, 2.0], 50) == 2.0
    assert pct([float(v) for v in range(101)], 95) == 95.0
