"""Admission control for chat jobs: rate limits, backpressure and idempotent retries (Redis)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time

from api.deps import AppState
from api.errors import ApiError
from shared.errors import ErrorCode
from shared.queues import QueueName, queue_state

__all__ = [
    "check_backpressure",
    "check_rate_limits",
    "claim_idempotency_key",
    "client_key",
    "release_key",
]

log = logging.getLogger(__name__)

_WINDOW_S = 60
#: Readers of one IPv6 /64 count as one client: a /64 is what one subscriber or host is given
#: (RFC 6177, RFC 7421), so keying on the whole address gave each of them 2^64 buckets.
_IPV6_CLIENT_PREFIX = 64


def client_key(address: str) -> str:
    """The rate-limit key of a client address: an IPv4 address as it is, an IPv6 address by
    its /64 network (an IPv4-mapped one as its IPv4 address); anything else (no address,
    "unknown") as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


async def _hit(state: AppState, key: str, limit: int) -> int | None:
    """Count a request against `limit` per minute over a sliding minute; the seconds to wait if
    over. The sliding-window counter (as `limits`' SlidingWindowCounter and Cloudflare's rate
    limiting): this minute's count plus last minute's, weighted by the part of it still inside
    the sliding minute. A fixed window let a client send twice the limit across its boundary
    (60 questions in 1.5 s at 30/min, issue 30)."""
    now = time.time()
    window = int(now // _WINDOW_S)
    current_key, previous_key = f"bookchat:rl:{key}:{window}", f"bookchat:rl:{key}:{window - 1}"
    pipe = state.redis.pipeline(transaction=False)
    pipe.incr(current_key)
    pipe.expire(current_key, 2 * _WINDOW_S + 1)
    pipe.get(previous_key)
    current, _, previous_raw = await pipe.execute()
    current, previous = int(current), int(previous_raw or 0)
    elapsed = now - window * _WINDOW_S
    if previous * (1 - elapsed / _WINDOW_S) + current <= limit:
        return None
    if current <= limit:  # last minute's share is what is over: wait until enough of it slid out
        wait = _WINDOW_S * (1 - (limit - current) / previous) - elapsed
    else:  # this minute alone is over: it becomes last minute's share, which must slide out
        wait = (_WINDOW_S - elapsed) + _WINDOW_S * (1 - limit / current)
    return max(1, math.ceil(wait))


async def check_rate_limits(state: AppState, *, client_ip: str, session_id: str | None) -> None:
    """429 `rate_limited` (with Retry-After) when the client (its address, by `client_key`) or
    the session is over its per-minute limit (BOOKCHAT_RATE_LIMIT_*_PER_MINUTE)."""
    settings = state.settings
    checks = [(f"ip:{client_key(client_ip)}", settings.rate_limit_ip_per_minute)]
    if session_id:
        checks.append((f"session:{session_id}", settings.rate_limit_session_per_minute))
    for key, limit in checks:
        if limit <= 0:
            continue
        wait = await _hit(state, key, limit)
        if wait is not None:
            raise ApiError(
                429,
                ErrorCode.RATE_LIMITED,
                f"Too many questions; try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )


#: Retry-After of a `queue_full` 503, seconds.
QUEUE_FULL_RETRY_AFTER_S = 10


async def check_backpressure(state: AppState) -> None:
    """Refuse new chat work (503 `queue_full`, `Retry-After`) when the chat queue cannot start
    it in time: `max_queued_chat_jobs` waiting, or the oldest waiting job has waited longer
    than `chat_queue_deadline_s` (every worker is full, or none runs). A reader is told at
    once instead of waiting a minute for an answer that was never started. A worker holds
    `chat_concurrency` answers in flight and takes a message as soon as it has room, so a
    message only waits while every worker is full."""
    settings = state.settings
    chat = await queue_state(state.redis, QueueName.CHAT)
    late = 0 < settings.chat_queue_deadline_s < chat.oldest_wait_s
    if chat.depth >= settings.max_queued_chat_jobs or late:
        why = "too many questions are waiting" if not late else "no answer could start in time"
        log.warning(
            "chat queue full (%s): %d waiting, the oldest for %.1f s",
            why,
            chat.depth,
            chat.oldest_wait_s,
        )
        raise ApiError(
            503,
            ErrorCode.QUEUE_FULL,
            "The assistant is busy right now; please retry shortly.",
            headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        )


def _idem_key(scope: str, key: str) -> str:
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    return f"bookchat:idem:{digest}"


async def claim_idempotency_key(
    state: AppState,
    *,
    scope: str,
    key: str,
    job_id: str,
    session_id: str,
    fingerprint: str,
    claimed_at: float,
) -> tuple[str, str, float] | None:
    """Bind `key` to this request's job and session. Returns the (job id, session id, claim
    time in epoch seconds) an earlier request with the same key got, or None if this request is
    the first. Claimed before the job exists, so concurrent retries cannot both create one. The
    same key with a different body is refused.

    The claim time is what a replay's tokens are issued as of when the job itself is gone:
    never the time of the replay, which would be newer than a revocation of the session
    (issue 30). A record written before the time was stored gives 0 (tokens long expired)."""
    redis_key = _idem_key(scope, key)
    value = f"{job_id}|{session_id}|{fingerprint}|{claimed_at!r}"
    claimed = await state.redis.set(redis_key, value, nx=True, ex=state.settings.idempotency_ttl_s)
    if claimed:
        return None
    existing = await state.redis.get(redis_key)
    if existing is None:  # expired between the two calls: treat as new
        return None
    text = existing.decode() if isinstance(existing, bytes) else str(existing)
    earlier_job, earlier_session, earlier_fingerprint, *rest = text.split("|", 3)
    if earlier_fingerprint != fingerprint:
        raise ApiError(
            422,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used with a different request body.",
        )
    return earlier_job, earlier_session, float(rest[0]) if rest else 0.0


async def release_key(state: AppState, *, scope: str, key: str) -> None:
    """Forget a key whose request failed before it was queued, so a retry can go through."""
    await state.redis.delete(_idem_key(scope, key))
