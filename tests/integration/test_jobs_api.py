"""Following jobs on the real stack: SSE resume without loss or duplicates, long-poll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.stack import Stack

pytestmark = pytest.mark.integration

QUESTION = "How do I send the arm to its home pose?"


def read_sse(response: httpx.Response, limit: int | None = None) -> list[tuple[str, str, str]]:
    """(id, event, data) of each event, up to `limit` events."""
    events: list[tuple[str, str, str]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in current:
                events.append((current.get("id", ""), current["event"], current.get("data", "")))
                if limit is not None and len(events) >= limit:
                    break
            current = {}
            continue
        if line.startswith(":"):
            continue  # a heartbeat comment
        key, _, value = line.partition(":")
        current[key] = value.strip()
    return events


def test_sse_resume_after_a_dropped_connection_yields_every_event_once(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    accepted = stack.chat(QUESTION)
    stack.wait(accepted["status_url"])
    with stack.http.stream("GET", accepted["events_url"]) as full:
        everything = read_sse(full)
    assert everything[-1][1] == "done"

    with stack.http.stream("GET", accepted["events_url"]) as first:
        head = read_sse(first, limit=3)  # then the client drops the connection
    with stack.http.stream(
        "GET", accepted["events_url"], headers={"Last-Event-ID": head[-1][0]}
    ) as resumed:
        tail = read_sse(resumed)
    assert head + tail == everything
    assert len({event_id for event_id, _, _ in head + tail}) == len(everything)


def test_sse_follows_a_job_live_from_queued_to_done(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    accepted = stack.chat(QUESTION)
    with stack.http.stream("GET", accepted["events_url"]) as live:
        events = read_sse(live)
    kinds = [kind for _, kind, _ in events]
    assert kinds[0] == "status"
    assert kinds[-1] == "done"
    assert "token" in kinds
    assert "citations" in kinds


def test_long_poll_returns_when_the_status_changes(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    accepted = stack.chat(QUESTION)
    # A long-poll wakes on a status change and on progress (the chat job reports the pages it
    # reads), so what a poll can return is a new (status, progress) pair.
    seen: list[tuple[str, Any]] = [("queued", None)]
    polls = 0
    while seen[-1][0] not in ("succeeded", "failed") and polls < 10:
        job = stack.http.get(f"{accepted['status_url']}&wait=30").json()
        polls += 1
        state = (job["status"], job.get("progress"))
        if state != seen[-1]:
            seen.append(state)
    assert seen[-1][0] == "succeeded"
    assert "running" in [status for status, _ in seen]
    # Every long-poll came back with something new (it returned on the change, not on timeout).
    assert polls == len(seen) - 1, seen


def test_another_sessions_token_cannot_read_a_job(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    mine = stack.chat(QUESTION)
    theirs = stack.chat("What is Lumen?")
    foreign = f"/v1/jobs/{mine['job_id']}?token={theirs['session_token']}"
    assert stack.http.get(foreign).status_code == 403
    events = f"/v1/jobs/{mine['job_id']}/events?token={theirs['session_token']}"
    assert stack.http.get(events).status_code == 403
    history = stack.http.get(
        f"/v1/sessions/{mine['session_id']}/messages",
        headers={"X-Session-Token": theirs["session_token"]},
    )
    assert history.status_code == 403
