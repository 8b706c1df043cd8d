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
from typing import TYPE_CHECKING, Any, TypeVar

from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.redis_client import make_redis
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
    from sqlmodel.ext.asyncio.session import AsyncSession

    from ingestion_jobs.embedding import Embedder
    from shared.vectorstore import VectorStore
    from worker.retrieval import Retriever

__all__ = ["WorkerRuntime", "get_runtime"]

T = TypeVar("T")


class WorkerRuntime:
    """Clients shared by every task in one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bookchat-loop", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        # Tasks share this pool on one loop; a burst of token events from many concurrent
        # jobs waits for a connection rather than failing the jobs ("Too many connections").
        self.redis = make_redis(settings.redis_url, max_connections=64, wait_for_connection_s=10)
        self.jobs = JobStore(self.redis, ttl_s=settings.job_ttl_s)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on this process's loop from a (sync) task thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @cached_property
    def engine(self) -> AsyncEngine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    @cached_property
    def store(self) -> VectorStore:
        from shared.vectorstore import open_store

        with self._lock:
            return open_store(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        from ingestion_jobs.embedding import get_embedder

        with self._lock:
            return get_embedder(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        from worker.retrieval import Retriever

        return Retriever(self.store, self.embedder, self.settings.collection)

    def close(self) -> None:
        async def _close() -> None:
            await self.redis.aclose()
            if "engine" in self.__dict__:
                await self.engine.dispose()

        self.run(_close(), timeout=10)
        if "store" in self.__dict__:
            self.store.close()
        self.loop.call_soon_threadsafe(self.loop.stop)


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


def reset_runtime() -> None:
    """Close and forget this process's runtime (tests, embedded mode shutdown)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None and _runtime_pid == os.getpid():
            _runtime.close()
        _runtime = None
