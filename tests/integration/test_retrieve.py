"""POST /v1/retrieve on the real stack ranks exactly as `bookchat search` does.

Qdrant's local mode lets one process open a store and the stack's worker holds it, so the
endpoint is asked first, then the worker is stopped and the same store is searched the way
`bookchat search` does (`Retriever.search(q, limit=, site=settings.site_name)`)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from ingestion_jobs.embedding import get_embedder
from shared.job_models import PublicPassage
from shared.settings import Settings
from shared.vectorstore import open_store
from tests.stack import Stack
from worker.retrieval import Retriever

pytestmark = pytest.mark.integration

QUERIES = ["home pose", "How do I install it?", "calibration of the gripper"]


def search_like_the_cli(settings: Settings, limit: int) -> dict[str, list[dict[str, Any]]]:
    store = open_store(settings)
    try:
        retriever = Retriever(store, get_embedder(settings), settings.collection)
        return {
            q: [
                hit.model_dump(include=set(PublicPassage.model_fields))
                for hit in retriever.search(q, limit=limit, site=settings.site_name)
            ]
            for q in QUERIES
        }
    finally:
        store.close()


def test_retrieve_matches_search_ranking(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    got: dict[str, list[dict[str, Any]]] = {}
    for query in QUERIES:
        response = stack.http.post("/v1/retrieve", json={"query": query, "limit": 5})
        assert response.status_code == 200, (response.text, stack.log())
        got[query] = response.json()
        assert got[query], query

    stack.worker.send_signal(signal.SIGTERM)
    stack.worker.wait(timeout=30)
    expected = search_like_the_cli(stack.settings, limit=5)
    for query in QUERIES:
        assert [(p["path"], p["heading"]) for p in got[query]] == [
            (p["path"], p["heading"]) for p in expected[query]
        ], query
        assert got[query] == [{**p, "score": pytest.approx(p["score"])} for p in expected[query]]


def test_filters_and_bad_input(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    nothing = stack.http.post(
        "/v1/retrieve", json={"query": "home pose", "filters": {"locale": "xx"}}
    )
    assert nothing.status_code == 200
    assert nothing.json() == []
    bad = stack.http.post("/v1/retrieve", json={"query": "home pose", "limit": 1000})
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"
