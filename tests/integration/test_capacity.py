"""Capacity as shipped (issue 24): the chat worker the Procfile starts, with its defaults, holds
200 answers in flight in one process. Counted, never timed: the fake LLM holds every answer's
first request until 200 are held at once, then lets them all finish."""

from __future__ import annotations

import asyncio
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fake_llm import FakeLLM, Reply
from tests.faults import child_pids, wait_for
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: What the shipped defaults must hold at once (BOOKCHAT_CHAT_CONCURRENCY's default).
IN_FLIGHT = 200


def procfile_command(process: str) -> list[str]:
    """The Procfile's command line for `process`, with `bookchat` this venv's script."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process:
            argv = shlex.split(command)
            if argv[0] == "bookchat":
                argv[0] = str(Path(ROOT / ".venv" / "bin" / "bookchat"))
            return argv
    raise AssertionError(f"no {process} in the Procfile")


class Gate:
    """A fake-LLM hook that holds each answer's first request (no tool output yet) until
    `release()`, counting how many it holds at once."""

    def __init__(self) -> None:
        self.held = 0
        self.most_held = 0
        self._lock = threading.Lock()
        self._released = False
        # Made on the fake LLM's own loop by its first request; set from the test's thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: asyncio.Event | None = None

    async def __call__(self, body: dict[str, Any]) -> Reply | None:
        if any(message.get("role") == "tool" for message in body["messages"]):
            return None  # the answer after the search: not held
        with self._lock:
            if self._open is None:
                self._loop, self._open = asyncio.get_running_loop(), asyncio.Event()
            if self._released:
                self._open.set()
            self.held += 1
            self.most_held = max(self.most_held, self.held)
        try:
            await self._open.wait()
        finally:
            with self._lock:
                self.held -= 1
        return None  # then the default: search_docs, and an answer citing it

    def release(self) -> None:
        with self._lock:
            self._released = True
            if self._loop is not None and self._open is not None:
                self._loop.call_soon_threadsafe(self._open.set)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_procfile_chat_worker_holds_200_answers_in_flight_in_one_process(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    for name in ("BOOKCHAT_RATE_LIMIT_IP_PER_MINUTE", "BOOKCHAT_RATE_LIMIT_SESSION_PER_MINUTE"):
        monkeypatch.setenv(name, "0")  # one loopback address stands for every reader
    gate = Gate()
    with FakeLLM(respond=gate) as fake:
        # The embedded store (no QDRANT_URL): the worker serves both queues in one process;
        # history in the embedded default's SQLite, or in Postgres. All 200 answers then end
        # at once: 200 history writes together.
        stack = make_stack(
            llm_base_url=fake.base_url,
            worker_command=procfile_command("worker_chat"),
            embedded_database=database == "sqlite",
        )
        try:
            accepted = [stack.chat(f"How do I calibrate the arm? ({n})") for n in range(IN_FLIGHT)]
            wait_for(
                lambda: gate.held >= IN_FLIGHT,
                timeout=180,
                what=f"{IN_FLIGHT} answers in flight (held at most {gate.most_held})",
            )
            assert child_pids(stack.worker.pid) == []  # one process: the threads pool
        finally:
            gate.release()
        jobs = [stack.wait(job["status_url"], timeout=120) for job in accepted]
    assert [job["status"] for job in jobs] == ["succeeded"] * IN_FLIGHT, stack.log()
    assert gate.most_held == IN_FLIGHT
    assert all(job["result"]["citations"] for job in jobs)


async def test_the_chat_queues_oldest_wait_is_read_from_a_real_task_message(
    redis_url: str,
) -> None:
    # The layout `queue_state` reads (kombu's Redis transport, Celery's message protocol), as
    # the API's sender writes it; the unit tier uses a hand-made message.
    from shared.jobs import JobKind, JobStore
    from shared.queues import QueueName, QueueState, TaskName, make_sender, queue_state
    from shared.redis_client import make_redis

    redis = make_redis(redis_url)
    sender = make_sender(redis_url)
    try:
        await redis.flushdb()
        jobs = JobStore(redis, ttl_s=600)
        assert await queue_state(redis, QueueName.CHAT) == QueueState(0, 0.0)
        oldest, newest = await jobs.create(JobKind.CHAT), await jobs.create(JobKind.CHAT)
        for job in (oldest, newest):
            await asyncio.to_thread(sender.send_task, TaskName.CHAT, kwargs={"job_id": job.id})
        state = await queue_state(redis, QueueName.CHAT, now=oldest.created_at + 42)
        assert state == QueueState(2, 42.0)
    finally:
        sender.close()
        await redis.flushdb()
        await redis.aclose()
