"""The per-site ingestion lock: two ingestions of the same site never overlap.

A redis-py `Lock` with a short TTL (`ingest_lock_timeout_s`), renewed every third of it while
the indexing runs. A worker that dies stops renewing, so the site is free again within one TTL
instead of staying locked for the length of the longest ingestion. The lock's token is the job
id of its holder, so a refused ingestion can say which job is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

__all__ = ["SiteBusyError", "lock_key", "site_lock"]

log = logging.getLogger(__name__)


class SiteBusyError(Exception):
    """Another ingestion of this site holds the lock."""

    def __init__(self, site: str, holder: str | None) -> None:
        super().__init__(f"an ingestion of site {site!r} is already running ({holder or '?'})")
        self.site = site
        self.holder = holder


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def lock_key(site: str) -> str:
    return f"bookchat:lock:ingest:{site}"


@asynccontextmanager
async def site_lock(
    redis: Redis,
    site: str,
    *,
    holder: str,
    timeout_s: float,
    on_renew: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[Lock]:
    """Hold the site's lock for the block, or raise `SiteBusyError` at once (never waits).

    `on_renew` runs at each renewal (the ingest job's heartbeat rides on it).
    """
    lock = redis.lock(lock_key(site), timeout=timeout_s, blocking=False, thread_local=False)
    if not await lock.acquire(token=holder):
        current = await redis.get(lock_key(site))
        raise SiteBusyError(site, _text(current))
    renewer = asyncio.create_task(_renew(lock, timeout_s, on_renew), name=f"lock-renew:{site}")
    try:
        yield lock
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await lock.release()
        except LockError:
            # Expired (renewal failed for a whole TTL) and maybe taken by another job: not ours
            # to release. The renewal loop has already logged it.
            log.warning("ingest lock of site %s was lost before release", site)


async def _renew(
    lock: Lock, timeout_s: float, on_renew: Callable[[], Awaitable[object]] | None
) -> None:
    while True:
        await asyncio.sleep(timeout_s / 3)
        try:
            await lock.extend(timeout_s, replace_ttl=True)
        except LockError:
            log.error("ingest lock %s lost (expired before renewal)", lock.name)
            return
        except Exception:  # Redis blip: try again next round; the TTL leaves two more tries
            log.warning("could not renew ingest lock %s", lock.name, exc_info=True)
            continue
        if on_renew is not None:
            try:
                await on_renew()
            except Exception:
                log.warning("heartbeat after lock renewal failed", exc_info=True)
