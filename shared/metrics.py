"""Worker-side metrics, kept in Redis so the API's `/metrics` can expose them.

Workers run in other processes, often on other hosts and in containers that come and go, so
their figures cannot live in their own memory (a scrape would miss every worker but none) nor in
prometheus_client's multiprocess directory (one host's filesystem only). Every process already
shares Redis: a worker adds to a counter with HINCRBYFLOAT and to a histogram bucket the same
way, and the API reads the hashes at scrape time (`api/metrics.py`). Counters are cumulative for
the life of the Redis data, which is what Prometheus expects of a counter (a Redis flush looks
like a counter reset, which `rate()` handles).

One definition per metric (`METRICS`) serves both sides. Labels are low-cardinality by design
(job kind, status, model, site): never an id, never a secret.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import orjson
from redis.asyncio import Redis

from shared.jobs import Job, JobKind, JobStatus

__all__ = [
    "METRICS",
    "MetricKind",
    "MetricSpec",
    "MetricsBatch",
    "MetricsSnapshot",
    "inc",
    "observe",
    "read_snapshot",
    "record_job_end",
]

_PREFIX = "bookchat:metrics:"

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LONG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)


class MetricKind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # Prometheus name; counters without the `_total` suffix
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "bookchat_jobs_finished",
            MetricKind.COUNTER,
            "Jobs that reached a final state, by kind and status.",
            ("kind", "status"),
        ),
        MetricSpec(
            "bookchat_job_latency_seconds",
            MetricKind.HISTOGRAM,
            "Time from enqueue (job created) to its final state.",
            ("kind", "status"),
            LONG_BUCKETS,
        ),
        MetricSpec(
            "bookchat_job_queue_wait_seconds",
            MetricKind.HISTOGRAM,
            "Time a job waited in its queue: created to its task's start on a worker.",
            ("kind",),
            LATENCY_BUCKETS,
        ),
        MetricSpec(
            "bookchat_job_run_seconds",
            MetricKind.HISTOGRAM,
            "Time a worker spent on a job (task start to end).",
            ("kind",),
            LONG_BUCKETS,
        ),
        MetricSpec(
            "bookchat_chat_answer_seconds",
            MetricKind.HISTOGRAM,
            "Time to produce a chat answer (job running to done: retrieval and LLM calls).",
            ("model",),
            LATENCY_BUCKETS,
        ),
        MetricSpec(
            "bookchat_llm_seconds",
            MetricKind.HISTOGRAM,
            "Time spent in the LLM for one answer (all its requests; searches excluded).",
            ("model",),
            LATENCY_BUCKETS,
        ),
        MetricSpec(
            "bookchat_llm_tokens",
            MetricKind.COUNTER,
            "LLM tokens used by chat answers, by model and direction (input/output).",
            ("model", "direction"),
        ),
        MetricSpec(
            "bookchat_llm_requests",
            MetricKind.COUNTER,
            "LLM requests made by chat answers, by model.",
            ("model",),
        ),
        MetricSpec(
            "bookchat_retrieval_seconds",
            MetricKind.HISTOGRAM,
            "Latency of one retrieval (hybrid search in Qdrant).",
            (),
            LATENCY_BUCKETS,
        ),
        MetricSpec(
            "bookchat_ingestions",
            MetricKind.COUNTER,
            "Ingestion jobs by site and outcome (succeeded, failed, skipped).",
            ("site", "outcome"),
        ),
        MetricSpec(
            "bookchat_ingest_pages",
            MetricKind.COUNTER,
            "Pages seen, changed and removed by ingestions.",
            ("site", "change"),
        ),
        MetricSpec(
            "bookchat_ingest_chunks",
            MetricKind.COUNTER,
            "Chunks embedded and deleted by ingestions.",
            ("site", "operation"),
        ),
        MetricSpec(
            "bookchat_jobs_marked_lost",
            MetricKind.COUNTER,
            "Running jobs the cleanup found without a heartbeat and failed as worker_lost.",
            ("kind",),
        ),
        MetricSpec(
            "bookchat_jobs_requeued",
            MetricKind.COUNTER,
            "Jobs the cleanup requeued because their worker or their task message was lost.",
            ("kind",),
        ),
    )
}


def _key(name: str) -> str:
    return f"{_PREFIX}{name}"


def _labels_field(spec: MetricSpec, labels: dict[str, str]) -> str:
    if set(labels) != set(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {sorted(labels)}")
    return orjson.dumps([str(labels[name]) for name in spec.labels]).decode()


class MetricsBatch:
    """Metric updates written together: one MULTI/EXEC, so one round trip however many there
    are. A chat answer writes two batches: its timings (the job) and its end (the task's
    postrun). Add with `inc`/`observe`, then `await write()`."""

    def __init__(self, redis: Redis) -> None:
        self._pipe = redis.pipeline(transaction=True)
        self._empty = True

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self._pipe.hincrbyfloat(_key(name), _labels_field(METRICS[name], labels), amount)
        self._empty = False

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Add one observation to a histogram: its bucket, the sum and the count."""
        spec = METRICS[name]
        field = _labels_field(spec, labels)
        bucket = next((str(b) for b in spec.buckets if value <= b), "+Inf")
        self._pipe.hincrbyfloat(_key(name), f"{field}|{bucket}", 1)
        self._pipe.hincrbyfloat(_key(name), f"{field}|sum", value)
        self._pipe.hincrbyfloat(_key(name), f"{field}|count", 1)
        self._empty = False

    async def write(self) -> None:
        if not self._empty:
            await self._pipe.execute()


async def inc(redis: Redis, name: str, amount: float = 1.0, **labels: str) -> None:
    """Add to a counter."""
    batch = MetricsBatch(redis)
    batch.inc(name, amount, **labels)
    await batch.write()


async def observe(redis: Redis, name: str, value: float, **labels: str) -> None:
    """Add one observation to a histogram: its bucket, the sum and the count, atomically."""
    batch = MetricsBatch(redis)
    batch.observe(name, value, **labels)
    await batch.write()


@dataclass(slots=True)
class HistogramSeries:
    labels: list[str]
    buckets: list[tuple[str, float]]  # cumulative, ending with +Inf
    sum: float


@dataclass(slots=True)
class MetricsSnapshot:
    counters: dict[str, list[tuple[list[str], float]]]
    histograms: dict[str, list[HistogramSeries]]


def _bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


async def read_snapshot(redis: Redis) -> MetricsSnapshot:
    """Every metric's current values, read in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for name in METRICS:
        pipe.hgetall(_key(name))
    replies: list[dict[bytes, bytes]] = await pipe.execute()
    snapshot = MetricsSnapshot(counters={}, histograms={})
    for spec, raw in zip(METRICS.values(), replies, strict=True):
        if spec.kind is MetricKind.COUNTER:
            snapshot.counters[spec.name] = [
                (orjson.loads(field), float(value)) for field, value in raw.items()
            ]
            continue
        per_labels: dict[bytes, dict[str, float]] = {}
        for field, value in raw.items():
            labels, _, part = field.rpartition(b"|")
            per_labels.setdefault(labels, {})[part.decode()] = float(value)
        series: list[HistogramSeries] = []
        for labels, parts in per_labels.items():
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for bound in (*spec.buckets, math.inf):
                running += parts.get("+Inf" if math.isinf(bound) else str(bound), 0.0)
                buckets.append((_bucket_label(bound), running))
            series.append(HistogramSeries(orjson.loads(labels), buckets, parts.get("sum", 0.0)))
        snapshot.histograms[spec.name] = series
    return snapshot


async def record_job_end(
    redis: Redis, job: Job, *, run_seconds: float | None, queue_wait_s: float | None = None
) -> None:
    """Everything a finished job tells: outcome, latencies, the time it waited in its queue
    (`queue_wait_s`, seconds, when its task saw it start), LLM usage, ingestion counts, in one
    round trip."""
    batch = MetricsBatch(redis)
    kind, status = str(job.kind), str(job.status)
    if queue_wait_s is not None:
        batch.observe("bookchat_job_queue_wait_seconds", queue_wait_s, kind=kind)
    batch.inc("bookchat_jobs_finished", kind=kind, status=status)
    batch.observe(
        "bookchat_job_latency_seconds",
        max(0.0, job.updated_at - job.created_at),
        kind=kind,
        status=status,
    )
    if run_seconds is not None:
        batch.observe("bookchat_job_run_seconds", run_seconds, kind=kind)
    result = job.result or {}
    if job.kind is JobKind.CHAT and job.status is JobStatus.SUCCEEDED:
        model = str(result.get("model") or "unknown")
        usage = result.get("usage") or {}
        if run_seconds is not None:
            batch.observe("bookchat_chat_answer_seconds", run_seconds, model=model)
        for direction in ("input", "output"):
            tokens = float(usage.get(f"{direction}_tokens") or 0)
            if tokens:
                batch.inc("bookchat_llm_tokens", tokens, model=model, direction=direction)
        if usage.get("requests"):
            batch.inc("bookchat_llm_requests", float(usage["requests"]), model=model)
    if job.kind is JobKind.INGEST:
        site = str(result.get("site") or job.meta.get("request", {}).get("site") or "unknown")
        outcome = "skipped" if result.get("skipped") else status
        batch.inc("bookchat_ingestions", site=site, outcome=outcome)
        if job.status is JobStatus.SUCCEEDED and not result.get("skipped"):
            for change in ("seen", "changed", "removed"):
                count = float(result.get(f"pages_{change}") or 0)
                if count:
                    batch.inc("bookchat_ingest_pages", count, site=site, change=change)
            for operation in ("embedded", "deleted"):
                count = float(result.get(f"chunks_{operation}") or 0)
                if count:
                    batch.inc("bookchat_ingest_chunks", count, site=site, operation=operation)
    await batch.write()
