"""The per-site ingestion lock: two ingestions of the same site never overlap.

A redis-py `Lock` with a short TTL (`ingest_lock_timeout_s`), renewed every third of it while
the indexing runs. A worker that dies stops renewing, so the site is free again within one TTL
instead of staying locked for the length of the longest ingestion. The lock's token is the job
id of its holder, so a refused ingestion can say which job is running.

A lock can still be lost while its holder runs (renewals failing for a whole TTL, a loop
starved of the GIL): another ingestion may then hold it. The holder must stop before its next
write, or the two runs overlap and the older one's writes and deletes undo the newer one's
(issue 30: a concurrent incremental re-index reported success and its change was dropped).
`HeldLock.check` says so, from any thread, before each write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from shared.errors import BookchatError, ErrorCode

__all__ = ["HeldLock", "LockLostError", "SiteBusyError", "lock_key", "site_lock"]

log = logging.getLogger(__name__)


class SiteBusyError(Exception):
    """Another ingestion of this site holds the lock."""

    def __init__(self, site: str, holder: str | None) -> None:
        super().__init__(f"an ingestion of site {site!r} is already running ({holder or '?'})")
        self.site = site
        self.holder = holder


class LockLostError(BookchatError):
    """The site lock expired or another holder has it: this ingestion must stop."""

    def __init__(self, site: str, holder: str | None) -> None:
        super().__init__(
            ErrorCode.INGEST_LOCK_LOST,
            f"The ingestion lost the lock of site {site!r} (now held by {holder or 'nobody'}) "
            "and stopped before writing more; the ingestion that holds it brings the index "
            "up to date.",
        )


class HeldLock:
    """The site lock as its holder sees it, for `check` from the indexing thread."""

    def __init__(self, lock: Lock, site: str, holder: str, loop: asyncio.AbstractEventLoop) -> None:
        self.lock, self.site, self.holder = lock, site, holder
        self._loop = loop
        self._lost = threading.Event()

    async def _token(self) -> str | None:
        return _text(await self.lock.redis.get(self.lock.name))

    def mark_lost(self) -> None:
        self._lost.set()

    def check(self, timeout_s: float = 10.0) -> None:
        """Raise `LockLostError` unless this holder still has the lock (one Redis read, run on
        the lock's loop). Call it from a thread other than that loop's, before a write. A read
        that fails (Redis restarting) is not a loss: the renewals decide that within a TTL."""
        if self._lost.is_set():
            raise LockLostError(self.site, None)
        read = asyncio.run_coroutine_threadsafe(self._token(), self._loop)
        try:
            token = read.result(timeout_s)
        except Exception:
            log.warning("could not check ingest lock %s", self.lock.name, exc_info=True)
            return
        if token != self.holder:
            self._lost.set()
            raise LockLostError(self.site, token)


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
) -> AsyncIterator[HeldLock]:
    """Hold the site's lock for the block, or raise `SiteBusyError` at once (never waits).

    `on_renew` runs at each renewal (the ingest job's heartbeat rides on it). The block gets a
    `HeldLock` whose `check` raises `LockLostError` once the lock is no longer this holder's.
    """
    lock = redis.lock(lock_key(site), timeout=timeout_s, blocking=False, thread_local=False)
    if not await lock.acquire(token=holder):
        current = await redis.get(lock_key(site))
        raise SiteBusyError(site, _text(current))
    held = HeldLock(lock, site, holder, asyncio.get_running_loop())
    renewer = asyncio.create_task(_renew(held, timeout_s, on_renew), name=f"lock-renew:{site}")
    try:
        yield held
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
    held: HeldLock, timeout_s: float, on_renew: Callable[[], Awaitable[object]] | None
) -> None:
    lock = held.lock
    while True:
        await asyncio.sleep(timeout_s / 3)
        try:
            await lock.extend(timeout_s, replace_ttl=True)
        except LockError:
            log.error("ingest lock %s lost (expired before renewal)", lock.name)
            held.mark_lost()
            return
        except Exception:  # Redis blip: try again next round; the TTL leaves two more tries
            log.warning("could not renew ingest lock %s", lock.name, exc_info=True)
            continue
        if on_renew is not None:
            try:
                await on_renew()
            except Exception:
                log.warning("heartbeat after lock renewal failed", exc_info=True)
