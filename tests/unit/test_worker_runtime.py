"""The worker runtime is where a worker process is set up: the Agents SDK's tracing is decided
there, once, from the settings (off unless an OpenAI key is configured), not per question."""

from __future__ import annotations

import pytest
from agents.tracing import get_trace_provider, set_tracing_disabled
from agents.tracing.traces import NoOpTrace

from shared.job_models import ChatRequest
from shared.settings import EmbedderKind, Settings
from worker.chat import answer_question
from worker.retrieval import Retriever
from worker.runtime import WorkerRuntime

pytestmark = pytest.mark.unit


def _tracing_on() -> bool:
    return not isinstance(get_trace_provider().create_trace("probe"), NoOpTrace)


@pytest.fixture(autouse=True)
def _tracing_off_after() -> object:
    yield None
    set_tracing_disabled(True)


def test_tracing_is_off_without_an_openai_key_and_on_with_one() -> None:
    set_tracing_disabled(False)
    for key, traced in ((None, False), ("sk-openai-test", True)):
        runtime = WorkerRuntime(Settings(openai_api_key=key))
        runtime.loop.call_soon_threadsafe(runtime.loop.stop)
        assert _tracing_on() is traced


async def test_answering_a_question_leaves_the_process_switch_alone(retriever: Retriever) -> None:
    set_tracing_disabled(False)  # as a runtime with an OpenAI key left it
    settings = Settings(embedder=EmbedderKind.HASH, openai_api_key=None)
    request = ChatRequest(message="How do I home the arm?")
    await answer_question(request, settings=settings, retriever=retriever)
    assert _tracing_on()


async def test_a_job_past_its_time_limit_is_cancelled_on_the_loop() -> None:
    # The threads pool every chat worker runs enforces no Celery time limit: `_run_job` bounds
    # the job on the event loop itself, and tells its own deadline from a job's TimeoutError.
    import asyncio

    from worker.tasks import _bounded, _JobTimedOut

    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()  # never set
        finally:
            cancelled.set()

    async def times_out_itself() -> None:
        raise TimeoutError("the job's own")

    with pytest.raises(_JobTimedOut):
        await _bounded(stuck(), 0.01)
    assert cancelled.is_set()
    with pytest.raises(TimeoutError, match="the job's own"):
        await _bounded(times_out_itself(), 60)
    await _bounded(asyncio.sleep(0), None)  # unbounded
