"""The typed job contract (shared/job_models.py): the schemas /openapi.json shows, and a stored
result served through GET /v1/jobs/{id} exactly as the worker wrote it."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from api.deps import AppState
from ingestion_jobs.indexer import IngestReport
from shared.access_tokens import issue_stream_token
from shared.job_models import ChatResult, IngestResult, IngestSkipped, RetrieveResult
from shared.jobs import JobKind
from tests.unit.conftest import SECRET

pytestmark = pytest.mark.unit


def _ref(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[1]


async def test_openapi_shows_each_kind_of_job_result(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    job = schema["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]
    union = job["content"]["application/json"]["schema"]
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(union["discriminator"]["mapping"]) == {"chat", "retrieve", "ingest"}
    by_kind = {
        kind: ref.rsplit("/", 1)[1] for kind, ref in union["discriminator"]["mapping"].items()
    }

    chat_result = components[by_kind["chat"]]["properties"]["result"]["anyOf"][0]
    answer = components[_ref(chat_result)]
    assert set(answer["properties"]) == set(ChatResult.model_fields)
    assert _ref(answer["properties"]["citations"]["items"]) == "Citation"
    assert set(components["Citation"]["properties"]) == {
        "path",
        "url",
        "heading",
        "title",
        "number",
    }

    retrieve_result = components[by_kind["retrieve"]]["properties"]["result"]["anyOf"][0]
    passages = components[_ref(retrieve_result)]["properties"]["passages"]
    assert _ref(passages["items"]) == "PublicPassage"

    ingest_result = components[by_kind["ingest"]]["properties"]["result"]["anyOf"]
    assert {_ref(s) for s in ingest_result if "$ref" in s} == {"IngestResult", "IngestSkipped"}
    for kind in by_kind.values():
        assert _ref(components[kind]["properties"]["error"]["anyOf"][0]) == "JobError"


async def test_openapi_request_bodies_are_the_job_requests(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, model in (("/v1/chat", "ChatRequest"), ("/v1/retrieve", "RetrieveRequest")):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert _ref(body) == model


def test_ingest_result_has_every_field_of_the_indexer_report() -> None:
    report_fields = {field.name for field in dataclasses.fields(IngestReport)}
    assert set(IngestResult.model_fields) == report_fields | {"site"}


@pytest.mark.parametrize(
    ("kind", "result"),
    [
        (
            JobKind.CHAT,
            ChatResult.model_validate(
                {
                    "answer": "Run the installer [1].",
                    "citations": [
                        {
                            "path": "docs/a.md",
                            "url": "/a#x",
                            "heading": "X",
                            "title": "A",
                            "number": 1,
                        }
                    ],
                    "refused": False,
                    "session_id": "5f0c1f7e-7a43-4d4c-9a45-0d3e5a9d2b11",
                    "message_id": "0b7c2ad8-2a6f-4c55-8f2b-52d7c1d4e0a9",
                    "model": "fake-model",
                    "usage": {"requests": 1, "input_tokens": 10, "output_tokens": 5},
                }
            ),
        ),
        (
            JobKind.RETRIEVE,
            RetrieveResult.model_validate(
                {
                    "passages": [
                        {
                            "path": "a.md",
                            "url": "/a",
                            "heading": "H",
                            "title": "T",
                            "score": 0.5,
                            "text": "body",
                        }
                    ]
                }
            ),
        ),
        (
            JobKind.INGEST,
            IngestSkipped(skipped="already_running", running_job_id="j-1", site="default"),
        ),
    ],
)
async def test_a_stored_result_is_served_as_written(
    client: httpx.AsyncClient, state: AppState, kind: JobKind, result: Any
) -> None:
    job = await state.jobs.create(kind)
    written = result.model_dump(mode="json")
    await state.jobs.succeed(job.id, written)
    token = issue_stream_token(SECRET, job.id, expires_at=job.created_at + 600)
    body = (await client.get(f"/v1/jobs/{job.id}", params={"token": token})).json()
    assert body["kind"] == kind
    assert body["status"] == "succeeded"
    assert body["result"] == written


@pytest.mark.parametrize(
    ("field", "limit"), [("path_prefix", 500), ("version", 100), ("locale", 35)]
)
def test_a_too_long_filter_says_characters(field: str, limit: int) -> None:
    import pydantic

    from shared.job_models import RetrieveFilters

    assert getattr(RetrieveFilters(**{field: "x" * limit}), field) == "x" * limit
    with pytest.raises(pydantic.ValidationError, match=f"at most {limit} characters"):
        RetrieveFilters(**{field: "x" * (limit + 1)})
    with pytest.raises(pydantic.ValidationError, match="control characters"):
        RetrieveFilters(**{field: "a\x00"})
