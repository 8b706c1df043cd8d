"""Worker metrics in Redis (shared/metrics.py): what a finished job records, in one round trip.
Over fakeredis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from redis.asyncio import Redis

from shared.jobs import Job, JobKind, JobStatus
from shared.metrics import MetricsBatch, read_snapshot, record_job_end

pytestmark = pytest.mark.unit


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


def _count_round_trips(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts pipeline executions and single commands sent through `redis`."""
    calls: list[int] = []
    real_pipeline, real_execute = redis.pipeline, redis.execute_command

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real = pipe.execute

        async def execute(*a: Any, **k: Any) -> Any:
            calls.append(1)
            return await real(*a, **k)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    async def execute_command(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await real_execute(*args, **kwargs)

    monkeypatch.setattr(redis, "pipeline", pipeline)
    monkeypatch.setattr(redis, "execute_command", execute_command)
    return calls


def _chat_job() -> Job:
    return Job(
        id="j1",
        kind=JobKind.CHAT,
        status=JobStatus.SUCCEEDED,
        created_at=100.0,
        updated_at=101.5,
        result={
            "model": "m",
            "usage": {"input_tokens": 120, "output_tokens": 30, "requests": 2},
        },
    )


async def test_a_chat_answer_records_every_metric_in_one_round_trip(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_round_trips(redis, monkeypatch)
    await record_job_end(redis, _chat_job(), run_seconds=1.2, queue_wait_s=0.3)
    assert len(calls) == 1
    monkeypatch.undo()

    snapshot = await read_snapshot(redis)
    assert snapshot.counters["bookchat_jobs_finished"] == [(["chat", "succeeded"], 1.0)]
    assert sorted(snapshot.counters["bookchat_llm_tokens"]) == [
        (["m", "input"], 120.0),
        (["m", "output"], 30.0),
    ]
    assert snapshot.counters["bookchat_llm_requests"] == [(["m"], 2.0)]
    (latency,) = snapshot.histograms["bookchat_job_latency_seconds"]
    assert latency.labels == ["chat", "succeeded"]
    assert latency.sum == pytest.approx(1.5)
    assert dict(latency.buckets)["1.0"] == 0
    assert dict(latency.buckets)["5.0"] == 1
    for name in ("bookchat_job_run_seconds", "bookchat_chat_answer_seconds"):
        (series,) = snapshot.histograms[name]
        assert series.sum == pytest.approx(1.2)
        assert series.buckets[-1] == ("+Inf", 1.0)
    (waited,) = snapshot.histograms["bookchat_job_queue_wait_seconds"]
    assert waited.labels == ["chat"]
    assert waited.sum == pytest.approx(0.3)
    assert dict(waited.buckets)["0.25"] == 0
    assert dict(waited.buckets)["0.5"] == 1


async def test_a_batch_adds_up_like_single_updates(redis: Redis) -> None:
    batch = MetricsBatch(redis)
    for seconds in (0.01, 0.2, 0.2):
        batch.observe("bookchat_retrieval_seconds", seconds)
    batch.inc("bookchat_llm_requests", 3, model="m")
    await batch.write()
    await MetricsBatch(redis).write()  # an empty batch writes nothing

    snapshot = await read_snapshot(redis)
    (series,) = snapshot.histograms["bookchat_retrieval_seconds"]
    assert dict(series.buckets)["0.05"] == 1
    assert dict(series.buckets)["0.25"] == 3
    assert series.sum == pytest.approx(0.41)
    assert snapshot.counters["bookchat_llm_requests"] == [(["m"], 3.0)]


async def test_labels_are_checked(redis: Redis) -> None:
    with pytest.raises(ValueError, match="takes labels"):
        MetricsBatch(redis).inc("bookchat_llm_requests", 1, site="x")
