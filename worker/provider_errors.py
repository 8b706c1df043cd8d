"""What a model provider's HTTP error means, read from OpenRouter's (and OpenAI's) error bodies.

OpenRouter wraps its upstream providers' failures; the openai client sees only a status code,
and retries only 408/409/429/5xx. Read by meaning instead (https://openrouter.ai/docs/api-reference/errors):

- `upstream`: "Provider returned error" — a 400/404/5xx whose `error.metadata.provider_name`
  names the upstream provider. Usually transient (that provider failed, another may not): a
  failed attempt, retried within the attempt budget, then the next model.
- `out_of_credits`: 402 ("Insufficient credits"). Every model of the account fails alike, so
  no fallback is tried; stable code `llm_out_of_credits`.
- `quota_exhausted`: a 429 whose reset (`error.metadata.headers.X-RateLimit-Reset`, epoch
  milliseconds) is further away than the answer's deadline, e.g. the free models' daily quota
  (`free-models-per-day`). Waiting will not help this answer; stable code
  `llm_quota_exhausted`, with the reset time.
- `model_not_found`: a 404 without a provider (`No endpoints found for …`, OpenAI's
  `model_not_found`): a configuration error, `llm_model_not_found`; the next model is tried.

Anything else is `None`: the caller's usual rules apply.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import openai

from shared.errors import BookchatError, ErrorCode

__all__ = ["ProviderFailure", "provider_failure", "refusal_error", "reset_at"]


class ProviderFailure(StrEnum):
    UPSTREAM = "upstream"
    OUT_OF_CREDITS = "out_of_credits"
    QUOTA_EXHAUSTED = "quota_exhausted"
    MODEL_NOT_FOUND = "model_not_found"


def _error_body(error: openai.APIStatusError) -> dict[str, Any]:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    return body if isinstance(body, dict) else {}


def _metadata(error: openai.APIStatusError) -> dict[str, Any]:
    metadata = _error_body(error).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def reset_at(error: openai.APIStatusError) -> float | None:
    """When a rate limit resets (epoch seconds), from OpenRouter's error metadata or the
    response's `X-RateLimit-Reset` header; None when not said."""
    headers = _metadata(error).get("headers")
    value: Any = headers.get("X-RateLimit-Reset") if isinstance(headers, dict) else None
    if value is None:
        value = error.response.headers.get("x-ratelimit-reset")
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        return None
    return stamp / 1000 if stamp > 1e11 else stamp  # milliseconds (OpenRouter) or seconds


def provider_failure(error: BaseException, *, deadline_s: float) -> ProviderFailure | None:
    """The meaning of a provider's HTTP error (see the module's docstring), or None."""
    if not isinstance(error, openai.APIStatusError):
        return None
    status = error.status_code
    if status == 402:
        return ProviderFailure.OUT_OF_CREDITS
    if status == 429:
        reset = reset_at(error)
        if reset is not None and reset - time.time() > deadline_s:
            return ProviderFailure.QUOTA_EXHAUSTED
        return None
    if _metadata(error).get("provider_name"):
        return ProviderFailure.UPSTREAM
    code = str(_error_body(error).get("code") or "")
    message = str(_error_body(error).get("message") or "")
    if status == 404 and (code == "model_not_found" or "No endpoints found" in message):
        return ProviderFailure.MODEL_NOT_FOUND
    return None


def refusal_error(
    error: BaseException | None, *, base_url: str, model: str, deadline_s: float
) -> BookchatError | None:
    """The stable error, with what the operator can do, for a provider refusal that waiting
    will not fix (out of credits, quota used up, model not found); None for anything else."""
    if not isinstance(error, openai.APIStatusError):
        return None
    meaning = provider_failure(error, deadline_s=deadline_s)
    said = str(_error_body(error).get("message") or error.status_code)
    if meaning is ProviderFailure.OUT_OF_CREDITS:
        return BookchatError(
            ErrorCode.LLM_OUT_OF_CREDITS,
            f"The model provider at {base_url} says the account is out of credits ({said}); "
            "add credits, or set BOOKCHAT_LLM_MODEL to a free model.",
        )
    if meaning is ProviderFailure.QUOTA_EXHAUSTED:
        reset = reset_at(error)
        when = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M UTC") if reset else "?"
        return BookchatError(
            ErrorCode.LLM_QUOTA_EXHAUSTED,
            f"The model provider's quota for {model} is used up until {when} ({said}); add "
            "credits, or set BOOKCHAT_LLM_FALLBACK_MODELS to a model with quota left.",
        )
    if meaning is ProviderFailure.MODEL_NOT_FOUND:
        return BookchatError(
            ErrorCode.LLM_MODEL_NOT_FOUND,
            f"The model {model} is not served at {base_url} ({said}); set BOOKCHAT_LLM_MODEL "
            "(and BOOKCHAT_LLM_FALLBACK_MODELS) to models it lists.",
        )
    return None
