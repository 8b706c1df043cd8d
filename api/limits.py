"""Admission control for chat jobs: rate limits, backpressure and idempotent retries (Redis)."""

from __future__ import annotations

import hashlib
import logging
import time

from api.deps import AppState
from api.errors import ApiError
from shared.errors import ErrorCode
from shared.queues import QueueName, queue_state

__all__ = ["check_backpressure", "check_rate_limits", "claim_idempotency_key", "release_key"]

log = logging.getLogger(__name__)

_WINDOW_S = 60


async def _hit(state: AppState, key: str, limit: int) -> int | None:
    """Count a request in the current one-minute window; the seconds to wait if over."""
    now = time.time()
    window = int(now // _WINDOW_S)
    redis_key = f"bookchat:rl:{key}:{window}"
    pipe = state.redis.pipeline(transaction=False)
    pipe.incr(redis_key)
    pipe.expire(redis_key, _WINDOW_S + 1)
    count, _ = await pipe.execute()
    if int(count) > limit:
        return max(1, int((window + 1) * _WINDOW_S - now) + 1)
    return None


async def check_rate_limits(state: AppState, *, client_ip: str, session_id: str | None) -> None:
    settings = state.settings
    checks = [(f"ip:{client_ip}", settings.rate_limit_ip_per_minute)]
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
    state: AppState, *, scope: str, key: str, job_id: str, session_id: str, fingerprint: str
) -> tuple[str, str] | None:
    """Bind `key` to this request's job and session. Returns the (job id, session id) an earlier
    request with the same key got, or None if this request is the first. Claimed before the job
    exists, so concurrent retries cannot both create one. The same key with a different body
    is refused."""
    redis_key = _idem_key(scope, key)
    value = f"{job_id}|{session_id}|{fingerprint}"
    claimed = await state.redis.set(redis_key, value, nx=True, ex=state.settings.idempotency_ttl_s)
    if claimed:
        return None
    existing = await state.redis.get(redis_key)
    if existing is None:  # expired between the two calls: treat as new
        return None
    text = existing.decode() if isinstance(existing, bytes) else str(existing)
    earlier_job, earlier_session, earlier_fingerprint = text.split("|", 2)
    if earlier_fingerprint != fingerprint:
        raise ApiError(
            422,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used with a different request body.",
        )
    return earlier_job, earlier_session


async def release_key(state: AppState, *, scope: str, key: str) -> None:
    """Forget a key whose request failed before it was queued, so a retry can go through."""
    await state.redis.delete(_idem_key(scope, key))
