"""How simulated readers ask questions: the load models of `bench/chat_load.py`.

- `ClosedLoop`: each reader asks its next question as soon as the answer is done (saturating:
  at 100 readers it measures throughput, answers queue);
- `ThinkTime`: each reader reads an answer for a random time (uniform in [low, high] seconds,
  seeded, the same draws in every phase of a run) before asking the next question, as people
  do. Readers start at a random point of their first think time, as if they had been reading
  for a while, so the run begins near its steady state instead of with a burst.

In both, reader i asks question (i + r) mod n in round r, the same in every phase, and a failed
or stuck request (past `REQUEST_TIMEOUT_S`) is counted, not fatal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

REQUEST_TIMEOUT_S = 60.0
STAGGER_S = 1.0


@dataclass(slots=True)
class Sample:
    question: int
    total_s: float
    ttft_s: float | None
    submit_s: float | None = None
    ok: bool = True
    error: str | None = None


#: One question asked one way (by its index); returns its sample.
Ask = Callable[[int], Awaitable[Sample]]


async def follow_answer(
    http: httpx.AsyncClient, events_url: str, q: int, started: float, submit_s: float
) -> Sample:
    """Follow a chat job's SSE stream to its `done` (or `error`): the Sample of question `q`
    asked at `started` (perf_counter), its time to first token and its submit time."""
    ttft, event, outcome = None, "", ""
    async with http.stream("GET", events_url) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line == "" and event:
                if event == "token" and ttft is None:
                    ttft = time.perf_counter() - started
                if event in ("done", "error"):
                    outcome = event
                    break
                event = ""
    total = time.perf_counter() - started
    return Sample(q, total, ttft, submit_s, ok=outcome == "done", error=outcome or "no done")


async def ask(one: Ask, q: int) -> Sample:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await one(q)
    except Exception as error:  # a failed or stuck request is counted, not fatal
        return Sample(q, time.perf_counter() - started, None, ok=False, error=repr(error)[:200])


class LoadModel(Protocol):
    name: str

    def describe(self) -> str: ...

    async def run(self, readers: int, questions: int, one: Ask) -> list[Sample]: ...


@dataclass(frozen=True)
class ClosedLoop:
    """Each reader asks `rounds` questions back to back; readers arrive spread over `stagger_s`."""

    rounds: int
    stagger_s: float = STAGGER_S
    name: str = "closed"

    def describe(self) -> str:
        return (
            f"closed loop: each reader asks {self.rounds} questions back to back "
            f"(readers arrive over {self.stagger_s:g} s)"
        )

    async def run(self, readers: int, questions: int, one: Ask) -> list[Sample]:
        async def reader(i: int) -> list[Sample]:
            # Readers arrive spread over stagger_s, not all in the same millisecond.
            await asyncio.sleep(self.stagger_s * i / readers)
            return [await ask(one, (i + r) % questions) for r in range(self.rounds)]

        per_reader = await asyncio.gather(*(reader(i) for i in range(readers)))
        return [s for group in per_reader for s in group]


@dataclass(frozen=True)
class ThinkTime:
    """Each reader asks `rounds` questions and reads each answer for uniform(low, high) seconds
    before the next; the draws come from `seed` and the reader's index only."""

    rounds: int
    low_s: float = 10.0
    high_s: float = 20.0
    seed: int = 19
    name: str = "think"

    def describe(self) -> str:
        return (
            f"think time: each reader asks {self.rounds} questions and reads each answer for "
            f"{self.low_s:g}-{self.high_s:g} s (uniform, seed {self.seed}) before the next"
        )

    def pauses(self, reader: int) -> list[float]:
        """Reader `reader`'s wait before each of its questions: a random point of a first think
        time, then one think time after each answer."""
        rng = random.Random(self.seed * 1_000_003 + reader)
        first = rng.uniform(0, rng.uniform(self.low_s, self.high_s))
        return [first] + [rng.uniform(self.low_s, self.high_s) for _ in range(self.rounds - 1)]

    async def run(self, readers: int, questions: int, one: Ask) -> list[Sample]:
        async def reader(i: int) -> list[Sample]:
            samples = []
            for r, pause in enumerate(self.pauses(i)):
                await asyncio.sleep(pause)
                samples.append(await ask(one, (i + r) % questions))
            return samples

        per_reader = await asyncio.gather(*(reader(i) for i in range(readers)))
        return [s for group in per_reader for s in group]


def parse_think(text: str) -> tuple[float, float]:
    """`"10-20"` -> (10.0, 20.0): the think time's bounds in seconds."""
    low, sep, high = text.partition("-")
    bounds = (float(low), float(high) if sep else float(low))
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise ValueError(f"think time {text!r}: want LOW-HIGH seconds, 0 <= LOW <= HIGH")
    return bounds


__all__ = [
    "REQUEST_TIMEOUT_S",
    "Ask",
    "ClosedLoop",
    "LoadModel",
    "Sample",
    "ThinkTime",
    "ask",
    "parse_think",
]
