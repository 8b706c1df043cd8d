"""Fuzz the whole HTTP API from its own OpenAPI schema: no input may produce a 5xx.

Runs on the unit app (fakeredis job store, SQLite history, in-memory broker). The number of
cases per operation is `BOOKCHAT_FUZZ_EXAMPLES` (default 60; set 1000+ for a long run).
"""

from __future__ import annotations

import os
from pathlib import Path

import fakeredis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.deps import AppState, get_state
from api.main import create_app
from shared.db import make_engine, make_sessionmaker
from shared.jobs import JobStore
from shared.migrate import upgrade_database
from shared.queues import make_sender
from shared.settings import EmbedderKind, Settings

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("BOOKCHAT_FUZZ_EXAMPLES", "60"))


def _app(tmp: Path) -> object:
    config = Settings(
        data_dir=tmp,
        embedder=EmbedderKind.HASH,
        admin_token="fuzz-admin-token-0123456789",  # type: ignore[arg-type]
        rate_limit_ip_per_minute=0,
        rate_limit_session_per_minute=0,
        retrieve_timeout_s=0.2,  # no worker runs here: /v1/retrieve must give up fast (504)
    )
    tmp.mkdir(parents=True, exist_ok=True)
    upgrade_database(config.effective_database_url)
    engine = make_engine(config.effective_database_url)
    state = AppState(
        settings=config,
        redis=(fake_redis := fakeredis.FakeAsyncRedis()),
        jobs=JobStore(fake_redis, ttl_s=600),
        sender=make_sender("memory://"),
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        secret=b"fuzz-secret",
    )
    app = create_app(config)
    app.dependency_overrides[get_state] = lambda: state
    return app


_TMP = Path(os.environ.get("TMPDIR", "/tmp")) / f"bookchat-fuzz-{os.getpid()}"
# /readyz answers 503 by design here (no worker is running); everything else must not.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(_TMP)).exclude(path="/readyz")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_produces_a_server_error(case: schemathesis.Case) -> None:
    if case.path.endswith("/events"):
        case.query = {**(case.query or {}), "token": "x"}  # an open stream would never end
    response = case.call()
    if response.status_code == 504:
        # No worker runs here, so a valid search times out by design; anything else is a bug.
        assert response.json()["code"] == "retrieve_timeout", response.text
        return
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str), body
        assert body.get("message"), body
