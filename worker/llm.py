"""The LLM behind the agent, built from settings: any OpenAI-compatible chat-completions
endpoint (OpenRouter, OpenAI, a local server), or the offline extractive model with no key."""

from __future__ import annotations

from functools import lru_cache

from agents import OpenAIChatCompletionsModel, set_tracing_disabled
from agents.models.interface import Model
from openai import AsyncOpenAI

from shared.settings import Settings
from worker.agent import ChatContext
from worker.offline_model import OfflineModel

__all__ = ["attribution_headers", "configure_tracing", "make_models", "openai_client"]


def configure_tracing(settings: Settings) -> None:
    """The SDK uploads traces to OpenAI by default; only do that with an OpenAI key."""
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
    base_url: str, api_key: str, timeout_s: float, headers: tuple[tuple[str, str], ...]
) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout_s,
        max_retries=0,  # retries and fallbacks are ours, bounded by the job's deadline
        default_headers=dict(headers),
    )


def openai_client(settings: Settings) -> AsyncOpenAI:
    """One HTTP client per process and endpoint, so connections are reused across jobs."""
    assert settings.llm_api_key is not None
    return _client(
        settings.llm_base_url,
        settings.llm_api_key.get_secret_value(),
        settings.llm_timeout_s,
        tuple(sorted(attribution_headers(settings).items())),
    )


def make_models(settings: Settings, context: ChatContext) -> list[tuple[str, Model]]:
    """The models to try, in order: the configured model then its fallbacks, or offline."""
    if settings.llm_api_key is None:
        from worker.offline_model import OFFLINE_MODEL_NAME

        return [(OFFLINE_MODEL_NAME, OfflineModel(context))]
    client = openai_client(settings)
    names = [settings.llm_model, *settings.llm_fallback_models]
    return [(name, OpenAIChatCompletionsModel(model=name, openai_client=client)) for name in names]
