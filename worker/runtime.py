"""Per-process worker resources and the event loop the async pipeline runs on.

Celery tasks are synchronous; the chat pipeline (Agents SDK, asyncpg, redis.asyncio) is async.
Rather than `asyncio.run()` per task (which would rebuild every connection pool and HTTP client
each time), each worker process owns one event loop in a background thread and one set of
clients bound to it. Everything is built lazily in the process that uses it: never before a
Celery fork (a model or loop created in the parent hangs the children).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.redis_client import make_redis
from shared.settings import Settings, get_settings
from worker.llm import configure_tracing

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
    from sqlmodel.ext.asyncio.session import AsyncSession

    from ingestion_jobs.embedding import Embedder
    from shared.vectorstore import VectorStore
    from worker.retrieval import Retriever

__all__ = [
    "ChatRuntime",
    "IngestRuntime",
    "JobRuntime",
    "ReportRuntime",
    "RetrieveRuntime",
    "WorkerRuntime",
    "get_runtime",
    "redis_connections",
]

T = TypeVar("T")


# What each job function needs of its worker process: `WorkerRuntime` has all of it; a test
# hands a job function an object with just the members its Protocol names.


class JobRuntime(Protocol):
    """Every job: the settings and the job store."""

    @property
    def settings(self) -> Settings: ...

    @property
    def jobs(self) -> JobStore: ...


class RetrieveRuntime(JobRuntime, Protocol):
    """A retrieval (worker/retrieve_job.py): the retriever too."""

    @property
    def retriever(self) -> Retriever: ...


class ChatRuntime(JobRuntime, Protocol):
    """A question (worker/chat_job.py, worker/index_wait.py): Redis (the site's index state,
    the metrics), the history database and the retriever too."""

    @property
    def redis(self) -> Redis: ...

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def retriever(self) -> Retriever: ...


class IngestRuntime(JobRuntime, Protocol):
    """An ingestion (worker/ingest_job.py): Redis (the site lock, the index state), the store,
    the embedder and the database (the page catalog) too."""

    @property
    def redis(self) -> Redis: ...

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def store(self) -> VectorStore: ...

    @property
    def embedder(self) -> Embedder: ...


class ReportRuntime(JobRuntime, Protocol):
    """A report (worker/report_job.py): the history database, the embedder and the retriever."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def embedder(self) -> Embedder: ...

    @property
    def retriever(self) -> Retriever: ...


class WorkerRuntime:
    """Clients shared by every task in one worker process, built from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        configure_tracing(settings)  # once per process, not per question
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bookchat-loop", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        # Tasks share this pool on one loop; a burst of token events from many concurrent
        # jobs waits for a connection rather than failing the jobs ("Too many connections").
        # Every command is short (nothing here blocks on a read), so one connection per answer
        # in flight is the most a burst can use.
        self.redis = make_redis(
            settings.redis_url,
            max_connections=redis_connections(settings),
            wait_for_connection_s=10,
        )
        self.jobs = JobStore(
            self.redis,
            ttl_s=settings.job_ttl_s,
            keep_question_text=settings.history_store_question_text,
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on this process's loop from a (sync) task thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @cached_property
    def engine(self) -> AsyncEngine:
        return make_engine(self.settings.effective_database_url, self.settings)

    @cached_property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    @cached_property
    def store(self) -> VectorStore:
        from shared.vectorstore import open_store

        with self._lock:
            return open_store(self.settings)

    @property
    def embedder(self) -> Embedder:
        """The process's one embedder for these settings (`get_embedder` holds it)."""
        from ingestion_jobs.embedding import get_embedder

        return get_embedder(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        from ingestion_jobs.embedding import embedder_for_index
        from worker.retrieval import Retriever

        return Retriever(
            self.store,
            self.embedder,
            self.settings.collection,
            follow_index=lambda stored: embedder_for_index(self.settings, stored),
        )


def redis_connections(settings: Settings) -> int:
    """The most Redis connections a worker process opens: one per answer in flight
    (`chat_concurrency`), plus a few for the signals, heartbeats and metrics around them."""
    return settings.chat_concurrency + 16


_runtime: WorkerRuntime | None = None
_runtime_pid: int | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> WorkerRuntime:
    """This process's runtime, created on first use (after any fork)."""
    global _runtime, _runtime_pid
    with _runtime_lock:
        if _runtime is None or _runtime_pid != os.getpid():
            _runtime = WorkerRuntime(get_settings())
            _runtime_pid = os.getpid()
        return _runtime
