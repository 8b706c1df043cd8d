"""Provider errors as OpenRouter sends them (issue 33 item 5), through the fake OpenAI-compatible
server over HTTP: an upstream "Provider returned error" is retried; out of credits, a used-up
quota and an unknown model each end with their own stable code and a message the operator can
act on, not "Every model failed (APIStatusError)" or "No model answered in time"."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from api.deps import AppState
from shared.errors import BookchatError, ErrorCode
from shared.job_models import ChatRequest
from tests.fake_llm import FakeLLM, openrouter_error
from tests.unit.conftest import llm_settings
from tests.unit.test_chatkit import Runtime
from tests.unit.test_provider_quirks import QUESTION
from worker.chat import Answer, answer_question
from worker.chat_job import process_chat_job
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

UPSTREAM = openrouter_error(400, "Provider returned error", provider="Chutes")


async def ask(retriever: Retriever, fake: FakeLLM, **settings: object) -> Answer:
    return await answer_question(
        ChatRequest(message=QUESTION),
        settings=llm_settings(fake, **settings),
        retriever=retriever,
    )


@pytest.mark.parametrize("status", [400, 404])
async def test_an_upstream_provider_error_is_retried(retriever: Retriever, status: int) -> None:
    async with FakeLLM() as fake:
        fake.enqueue(
            openrouter_error(status, "Provider returned error", provider="Chutes"),
            model="primary",
        )
        answer = await ask(retriever, fake)
    assert not answer.refused
    assert fake.model_counts["primary"] == 3  # the failed request, then search + answer


async def test_an_upstream_error_on_every_try_is_llm_unavailable(retriever: Retriever) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model("primary", UPSTREAM)
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, fake)
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert fake.model_counts["primary"] == 2  # llm_attempts_per_model


async def test_out_of_credits_is_its_own_code_and_tries_no_other_model(
    retriever: Retriever,
) -> None:
    async with FakeLLM() as fake:
        fake.script_for_model("primary", openrouter_error(402, "Insufficient credits"))
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, fake, llm_fallback_models=["backup"])
    assert caught.value.code is ErrorCode.LLM_OUT_OF_CREDITS
    assert "credits" in caught.value.message
    assert fake.model_counts["backup"] == 0


async def test_a_used_up_daily_quota_says_when_it_resets(retriever: Retriever) -> None:
    reset = int(time.time()) + 3600
    async with FakeLLM() as fake:
        fake.script_for_model(
            "primary",
            openrouter_error(
                429, "Rate limit exceeded: free-models-per-day", reset_ms=reset * 1000
            ),
        )
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, fake)
    assert caught.value.code is ErrorCode.LLM_QUOTA_EXHAUSTED
    assert datetime.fromtimestamp(reset, UTC).strftime("%H:%M UTC") in caught.value.message
    assert "free-models-per-day" in caught.value.message


async def test_an_unknown_model_is_model_not_found_and_the_fallback_answers(
    retriever: Retriever,
) -> None:
    missing = openrouter_error(404, "No endpoints found for acme/nonexistent:free.")
    async with FakeLLM() as fake:
        fake.script_for_model("primary", missing)
        with pytest.raises(BookchatError) as caught:
            await ask(retriever, fake)
        answer = await ask(retriever, fake, llm_fallback_models=["backup"])
    assert caught.value.code is ErrorCode.LLM_MODEL_NOT_FOUND
    assert "BOOKCHAT_LLM_MODEL" in caught.value.message
    assert not answer.refused


async def test_readyz_warns_the_operator_of_a_refusal_only_they_can_fix(
    retriever: Retriever, state: AppState, client: httpx.AsyncClient
) -> None:
    state.settings.readyz_require_workers = False
    assert (await client.get("/readyz")).json()["checks"]["llm"] == "ok"
    accepted = (await client.post("/v1/chat", json={"message": QUESTION})).json()
    async with FakeLLM() as fake:
        fake.script_for_model("primary", openrouter_error(402, "Insufficient credits"))
        runtime = Runtime(
            llm_settings(fake), state.jobs, state.redis, state.sessionmaker, retriever
        )
        await process_chat_job(runtime, accepted["job_id"])
    job = await state.jobs.get(accepted["job_id"])
    assert job is not None
    assert job.error is not None
    assert job.error["code"] == "llm_out_of_credits"
    ready = await client.get("/readyz")
    assert ready.status_code == 200  # other questions may still be answered
    assert ready.json()["checks"]["llm"].startswith("warning: llm_out_of_credits")
