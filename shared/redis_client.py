"""Redis connections: one pool per process, built from settings."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

__all__ = ["DEFAULT_REDIS_URL", "make_redis"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def make_redis(
    url: str | None, *, max_connections: int = 4096, wait_for_connection_s: float | None = None
) -> Redis:
    """An asyncio Redis client. Long-polls and SSE readers each hold a connection while they
    block, so the pool is sized for many concurrent waiters: at 512, the 513th open SSE stream
    got a 503 and, once the pool was dry, open streams broke at their next read
    (bench/polling_capacity.py). Connections are opened on demand; Redis allows 10,000 clients
    by default, so several API processes still fit.

    With `wait_for_connection_s`, a command finding every connection busy waits that long for
    one instead of failing at once with "Too many connections": right for a process whose
    commands are all short (a worker), where a burst must queue, not crash jobs."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "socket_connect_timeout": 5,
        # Above the longest blocking read (long-poll `wait` <= 60 s, SSE reads 10 s); redis-py's
        # default of 5 s would cut them off.
        "socket_timeout": 75,
        "health_check_interval": 30,
        "retry_on_timeout": True,
    }
    if wait_for_connection_s is None:
        return Redis.from_url(url or DEFAULT_REDIS_URL, **options)
    pool = BlockingConnectionPool.from_url(
        url or DEFAULT_REDIS_URL, timeout=wait_for_connection_s, **options
    )
    return Redis.from_pool(pool)  # closing the client closes its pool
