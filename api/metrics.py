"""Prometheus metrics of the API: its own HTTP figures, plus the workers' figures from Redis.

HTTP latency is measured here, in this process's registry (each API replica is scraped on its
own). Everything the workers measure (jobs, LLM usage, ingestions) is recorded in Redis by
`shared.metrics` and read back at scrape time, so one scrape of any API replica shows every
worker on every host. Queue depth and the chat queue's oldest wait are read live
(`shared.queues.queue_depths`, `queue_state`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import METRICS, MetricKind, MetricsSnapshot, read_snapshot
from shared.queues import QueueName, QueueState, queue_depths, queue_state

__all__ = ["ApiMetrics", "MetricsMiddleware", "render_metrics"]

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """This API process's registry (one per app, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "bookchat_http_request_duration_seconds",
            "HTTP request latency by route template, method and status (SSE: stream length).",
            ("route", "method", "status"),
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )


class MetricsMiddleware:
    """Times every HTTP request. Pure ASGI (not BaseHTTPMiddleware) so streaming responses
    pass through untouched. Labelled by the matched route's template, never the raw path, so
    ids in URLs cannot blow up the number of series."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.http_latency.labels(route, scope["method"], str(status)).observe(
                time.perf_counter() - start
            )


class _SnapshotCollector(Collector):
    """Exposes one Redis snapshot of the workers' metrics, and the queue depths."""

    def __init__(
        self,
        snapshot: MetricsSnapshot | None,
        depths: dict[str, int] | None,
        chat: QueueState | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.depths = depths
        self.chat = chat

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "bookchat_metrics_store_up", "1 when the workers' metrics could be read from Redis."
        )
        up.add_metric([], 1.0 if self.snapshot is not None else 0.0)
        yield up
        if self.depths is not None:
            depth = GaugeMetricFamily(
                "bookchat_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
            )
            for queue, length in self.depths.items():
                depth.add_metric([queue], float(length))
            yield depth
        if self.chat is not None:
            oldest = GaugeMetricFamily(
                "bookchat_queue_oldest_wait_seconds",
                "How long the oldest task still waiting in the queue has waited (0: none).",
                labels=["queue"],
            )
            oldest.add_metric([str(QueueName.CHAT)], self.chat.oldest_wait_s)
            yield oldest
        if self.snapshot is None:
            return
        for spec in METRICS.values():
            if spec.kind is MetricKind.COUNTER:
                counter = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
                for labels, value in self.snapshot.counters.get(spec.name, []):
                    counter.add_metric(labels, value)
                yield counter
            else:
                histogram = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
                for series in self.snapshot.histograms.get(spec.name, []):
                    histogram.add_metric(series.labels, series.buckets, series.sum)
                yield histogram


async def render_metrics(metrics: ApiMetrics, redis: Redis) -> bytes:
    """The exposition text: this process's HTTP metrics, then the shared ones from Redis.
    A Redis outage still yields the HTTP metrics, with `bookchat_metrics_store_up 0`."""
    snapshot: MetricsSnapshot | None
    depths: dict[str, int] | None
    chat: QueueState | None
    try:
        async with asyncio.timeout(3):
            snapshot = await read_snapshot(redis)
            depths = await queue_depths(redis)
            chat = await queue_state(redis, QueueName.CHAT)
    except Exception:  # reported through bookchat_metrics_store_up, not raised
        snapshot, depths, chat = None, None, None
    shared = CollectorRegistry(auto_describe=False)
    shared.register(_SnapshotCollector(snapshot, depths, chat))
    return generate_latest(metrics.registry) + generate_latest(shared)
