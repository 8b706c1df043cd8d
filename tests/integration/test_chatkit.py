"""ChatKit on the real stack: API -> Redis -> Celery worker (offline model) -> Postgres, driven
with the ChatKit SDK's own request and event types."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chatkit.types import AssistantMessageItem, ThreadCreatedEvent, UserMessageItem

from tests import chatkit_client as ck
from tests.integration.test_chat_path import QUESTION
from tests.stack import Stack, stored_messages

pytestmark = pytest.mark.integration


def post(stack: Stack, payload: bytes, token: str | None = None) -> str:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Session-Token"] = token
    with stack.http.stream("POST", "/v1/chatkit", content=payload, headers=headers) as response:
        assert response.status_code == 200, response.read()
        return "".join(response.iter_text())


def test_chatkit_thread_is_answered_by_the_worker_and_kept_in_history(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    events = ck.parse_stream(post(stack, ck.create_thread(QUESTION)))
    assert any(isinstance(e, ThreadCreatedEvent) for e in events)
    thread_id, token = ck.session_of(events)
    assert ck.streamed_text(events), stack.log()
    answer = ck.done_items(events)[-1]
    assert isinstance(answer, AssistantMessageItem), events
    sources = answer.content[0].annotations
    assert any("first-move" in (s.source.description or "") for s in sources)

    # The worker wrote the exchange; the thread's items are those rows.
    rows = stored_messages(stack, thread_id)
    assert [r.role for r in rows] == ["user", "assistant"]
    assert rows[1].content == answer.content[0].text
    response = stack.http.post(
        "/v1/chatkit",
        content=ck.list_items(thread_id),
        headers={"X-Session-Token": token, "Content-Type": "application/json"},
    )
    items = ck.ITEMS.validate_json(response.content).data
    assert [type(i) for i in items] == [UserMessageItem, AssistantMessageItem]
    assert items[1].id == answer.id

    # A second turn sees the first: the worker loads the session's history.
    second = ck.parse_stream(post(stack, ck.add_message(thread_id, "and how often?"), token))
    assert isinstance(ck.done_items(second)[-1], AssistantMessageItem)
    assert len(stored_messages(stack, thread_id)) == 4
