"""Settings: every field documented, placeholders refused in production."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from shared.settings import Environment, Settings
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(
        re.findall(r"^#?\s*(BOOKCHAT_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    missing = [
        f"BOOKCHAT_{name.upper()}"
        for name in Settings.model_fields
        if f"BOOKCHAT_{name.upper()}" not in documented and name != "openai_api_key"
    ]
    assert missing == []


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(environment=Environment.PRODUCTION, admin_token="changeme")  # type: ignore[arg-type]
    ok = Settings(
        environment=Environment.PRODUCTION,
        admin_token="a-real-admin-token-123",  # type: ignore[arg-type]
        secret_key="a-real-secret-key-456789",  # type: ignore[arg-type]
    )
    assert ok.environment is Environment.PRODUCTION


def test_platform_names_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    settings = Settings()
    assert settings.database_url == "postgres://u@h/db"
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-or-test"


def test_openai_key_goes_only_to_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOOKCHAT_LLM_API_KEY", "OPENROUTER_API_KEY", "BOOKCHAT_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-tracing-only")
    # The default endpoint is OpenRouter: the OpenAI key must not become its key.
    assert Settings().llm_api_key is None
    openai = Settings(llm_base_url="https://api.openai.com/v1")
    assert openai.llm_api_key is not None
    assert openai.llm_api_key.get_secret_value() == "sk-openai-tracing-only"
