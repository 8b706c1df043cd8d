"""GET /v1/jobs/{id}/events resumed at or past the end, or at a position out of range
(issue 16, items 5 and 6): a finished job answers 204 at once (an EventSource stops
reconnecting), a bad position is a 422 `invalid_event_id`, never a 200 that breaks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.deps import AppState

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


async def asked(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/chat", json={"message": "How do I install Lumen?"})
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def test_a_finished_job_resumed_at_its_end_or_later_closes_at_once(
    client: httpx.AsyncClient, state: AppState
) -> None:
    accepted = await asked(client)
    await state.jobs.succeed(accepted["job_id"], {"answer": "yes"})
    done_id = await state.jobs.last_event_id(accepted["job_id"])
    ms, seq = (int(part) for part in done_id.split("-"))
    for position in (done_id, f"{ms}-{seq + 1}", f"{ms + 10**6}-0", f"{2**64 - 1}-{2**64 - 1}"):
        by_header = await client.get(accepted["events_url"], headers={"Last-Event-ID": position})
        assert by_header.status_code == 204, (position, by_header.text)
        by_query = await client.get(f"{accepted['events_url']}&after={position}")
        assert by_query.status_code == 204, (position, by_query.text)


async def test_a_finished_job_from_the_start_streams_to_done_and_ends(
    client: httpx.AsyncClient, state: AppState
) -> None:
    accepted = await asked(client)
    await state.jobs.succeed(accepted["job_id"], {"answer": "yes"})
    response = await client.get(accepted["events_url"])
    assert response.status_code == 200
    assert "event: done" in response.text


@pytest.mark.parametrize(
    "position", ["99999999999999999999-0", "1-99999999999999999999", "12", "a-1", "-1-0"]
)
async def test_an_out_of_range_position_is_422_invalid_event_id(
    client: httpx.AsyncClient, state: AppState, position: str
) -> None:
    accepted = await asked(client)
    for request in (
        client.get(accepted["events_url"], headers={"Last-Event-ID": position}),
        client.get(f"{accepted['events_url']}&after={position}"),
    ):
        response = await request
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_event_id"


async def test_a_position_past_the_end_of_a_running_job_is_422(
    client: httpx.AsyncClient, state: AppState
) -> None:
    accepted = await asked(client)
    await state.jobs.mark_running(accepted["job_id"])
    last = await state.jobs.last_event_id(accepted["job_id"])
    ms = int(last.split("-")[0])
    response = await client.get(accepted["events_url"], headers={"Last-Event-ID": f"{ms + 1}-0"})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_event_id"
