"""The model provider's last refusal that only the operator can fix, for /readyz.

When a chat job fails because the provider refuses for a reason waiting will not fix (out of
credits, a quota used up until a later reset, a model it does not serve: worker/provider_errors.py),
the worker records the error here; `/readyz` shows it under `checks.llm` as a warning (the API
stays ready: other questions may still be answered, e.g. by a fallback model) until it is
`REFUSAL_TTL_S` old.

Redis string `bookchat:llm:refusal`: JSON `{"code", "message", "at"}` (epoch seconds).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from redis.asyncio import Redis

from shared.errors import ErrorCode

__all__ = ["OPERATOR_CODES", "REFUSAL_KEY", "last_refusal", "record_refusal"]

REFUSAL_KEY = "bookchat:llm:refusal"
REFUSAL_TTL_S = 15 * 60
#: The job error codes that concern the deployment's configuration, not one question.
OPERATOR_CODES = frozenset(
    {ErrorCode.LLM_OUT_OF_CREDITS, ErrorCode.LLM_QUOTA_EXHAUSTED, ErrorCode.LLM_MODEL_NOT_FOUND}
)


async def record_refusal(redis: Redis, code: ErrorCode, message: str) -> None:
    payload = {"code": str(code), "message": message, "at": time.time()}
    await redis.set(REFUSAL_KEY, orjson.dumps(payload), ex=REFUSAL_TTL_S)


async def last_refusal(redis: Redis) -> dict[str, Any] | None:
    raw = await redis.get(REFUSAL_KEY)
    if not raw:
        return None
    value: dict[str, Any] = orjson.loads(raw)
    return value
