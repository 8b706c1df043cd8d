"""The LLM behind the agent, built from settings: any OpenAI-compatible chat-completions
endpoint (OpenRouter, OpenAI, a local server), or the offline extractive model with no key.

Two kinds of failure, retried by two mechanisms:

- Failures of the HTTP request (429 with or without `Retry-After`, 5xx, a refused or dropped
  connection before the body, a request timeout) are retried by the openai client itself
  (`max_retries`, its own backoff, honouring `Retry-After`).
- Failures the client cannot see because the 200 has already started streaming are failures of
  the *attempt* (`AttemptFailed`): an in-stream error chunk, a stream that ends or breaks before
  a `finish_reason`, a body that is not JSON, an empty or whitespace-only completion, a
  completion cut off by the token limit (`finish_reason: "length"`). The pipeline
  (worker/chat.py) retries those with tenacity, then falls back to the next model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import httpx2
import openai
from agents import OpenAIChatCompletionsModel, set_tracing_disabled
from agents.models.interface import Model
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from openai.types.chat import ChatCompletionChunk

from shared.settings import Settings
from worker.agent import ChatContext
from worker.offline_model import OFFLINE_MODEL_NAME, OfflineModel

__all__ = [
    "AttemptFailed",
    "CheckedChatCompletionsModel",
    "attribution_headers",
    "configure_tracing",
    "make_models",
    "openai_client",
]


class AttemptFailed(Exception):
    """One model attempt produced no usable answer, although the HTTP request succeeded:
    worth another attempt. `reason` is a stable word for logs (`empty_completion`,
    `stream_error`, `stream_truncated`, `malformed_stream`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def configure_tracing(settings: Settings) -> None:
    """The SDK uploads traces to OpenAI by default; only do that with an OpenAI key. A process
    switch: called once where a process that answers is set up (`WorkerRuntime`,
    `bookchat ask`), never per question."""
    set_tracing_disabled(settings.openai_api_key is None)


def attribution_headers(settings: Settings) -> dict[str, str]:
    """OpenRouter's app attribution headers (`HTTP-Referer`, `X-Title`): sent to openrouter.ai,
    or wherever `llm_attribution_headers` forces them (a proxy in front of OpenRouter)."""
    send = settings.llm_attribution_headers
    if send is None:
        send = "openrouter.ai" in settings.llm_base_url
    if not send:
        return {}
    referer = settings.llm_app_url or settings.public_base_url or "https://github.com/bookchat"
    return {"HTTP-Referer": referer, "X-Title": settings.llm_app_title}


@lru_cache(maxsize=4)
def _client(
    base_url: str,
    api_key: str,
    timeout_s: float,
    max_retries: int,
    headers: tuple[tuple[str, str], ...],
    connections: int,
) -> AsyncOpenAI:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout_s,
        max_retries=max_retries,
        default_headers=dict(headers),
        http_client=DefaultAsyncHttpxClient(limits=limits, timeout=timeout_s),
    )


def openai_client(settings: Settings) -> AsyncOpenAI:
    """One HTTP client per process and endpoint, so connections are reused across jobs.

    Its pool keeps a connection per answer in flight (`chat_concurrency`) open between
    answers: the openai client's own default keeps 100, so at 200 answers in flight half of
    the requests would open a new connection (a TLS handshake to a hosted model). The client
    retries a failed request `llm_attempts_per_model - 1` times; the job's deadline
    (`llm_timeout_s`, enforced by the pipeline) bounds the whole.
    """
    assert settings.llm_api_key is not None
    return _client(
        settings.llm_base_url,
        settings.llm_api_key.get_secret_value(),
        settings.llm_timeout_s,
        settings.llm_attempts_per_model - 1,
        tuple(sorted(attribution_headers(settings).items())),
        settings.chat_concurrency,
    )


class _CheckedStream:
    """The chunk stream of one streamed completion, checked as it is read.

    Raises `AttemptFailed` for what the openai client passes through as data or as a plain
    end of body: a chunk whose choice finishes with `finish_reason: "error"` (OpenRouter's
    mid-stream error; the chunk may also carry an `error` object, which the client raises as
    `openai.APIError`, re-raised here), an end of stream with no `finish_reason` at all, a body
    broken off or not JSON. Everything else is passed through untouched.
    """

    def __init__(self, inner: Any, on_finish: Callable[[str], None] | None = None) -> None:
        self._inner = inner
        self._on_finish = on_finish
        self._iterator = inner.__aiter__()
        self._finished = False
        self.response = getattr(inner, "response", None)  # the SDK reads x-request-id here

    def __aiter__(self) -> _CheckedStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        try:
            chunk: ChatCompletionChunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            if not self._finished:
                raise AttemptFailed("stream_truncated", "no finish_reason") from None
            raise
        except openai.APIStatusError:
            raise
        except openai.APIError as error:  # in-band error event, or the body broke off
            reason = (
                "stream_truncated"
                if isinstance(error, openai.APIConnectionError)
                else "stream_error"
            )
            raise AttemptFailed(reason, str(error)) from error
        except json.JSONDecodeError as error:
            raise AttemptFailed("malformed_stream", str(error)) from error
        error_body = getattr(chunk, "error", None) or (chunk.model_extra or {}).get("error")
        for choice in chunk.choices:
            # "error" is no finish_reason the openai types list: OpenRouter sends it anyway.
            if str(choice.finish_reason) == "error" or error_body:
                detail = json.dumps(error_body) if error_body else "finish_reason=error"
                raise AttemptFailed("stream_error", detail)
            if choice.finish_reason is not None:
                self._finished = True
                if self._on_finish is not None:
                    self._on_finish(str(choice.finish_reason))
        return chunk

    async def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()


class CheckedChatCompletionsModel(OpenAIChatCompletionsModel):
    """`OpenAIChatCompletionsModel` whose streamed completions are checked chunk by chunk
    (`_CheckedStream`). The SDK demands a `finish_reason` only from api.openai.com; OpenRouter
    and local servers get the same check here. Overrides the SDK's private `_fetch_response`,
    the one place the raw stream passes through (openai-agents 0.24).

    `last_finish_reason` is the finish_reason of the latest completion (`"length"`: the token
    limit cut it off, which the SDK passes on as a finished answer; worker/chat.py makes it a
    failed attempt). One instance serves one job, so it is that job's."""

    last_finish_reason: str | None = None

    async def _fetch_response(self, *args: Any, **kwargs: Any) -> Any:
        self.last_finish_reason = None
        result = await super()._fetch_response(*args, **kwargs)
        if isinstance(result, tuple):
            response, stream = result
            return response, _CheckedStream(stream, self._finished)
        choices = getattr(result, "choices", None) or []
        if choices:
            self.last_finish_reason = str(choices[0].finish_reason)
        return result

    def _finished(self, reason: str) -> None:
        self.last_finish_reason = reason


def make_models(settings: Settings, context: ChatContext) -> list[tuple[str, Model]]:
    """The models to try, in order: the configured model then its fallbacks, or offline."""
    if settings.llm_api_key is None:
        return [(OFFLINE_MODEL_NAME, OfflineModel(context))]
    client = openai_client(settings)
    names = [settings.llm_model, *settings.llm_fallback_models]
    return [(name, CheckedChatCompletionsModel(model=name, openai_client=client)) for name in names]
