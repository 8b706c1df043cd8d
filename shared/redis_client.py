"""Redis connections: one pool per process, built from settings."""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["DEFAULT_REDIS_URL", "make_redis"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def make_redis(url: str | None, *, max_connections: int = 512) -> Redis:
    """An asyncio Redis client. Long-polls and SSE readers each hold a connection while they
    block, so the pool is sized for many concurrent waiters."""
    return Redis.from_url(
        url or DEFAULT_REDIS_URL,
        max_connections=max_connections,
        socket_connect_timeout=5,
        # Above the longest blocking read (long-poll `wait` <= 60 s, SSE reads 10 s); redis-py's
        # default of 5 s would cut them off.
        socket_timeout=75,
        health_check_interval=30,
        retry_on_timeout=True,
    )
