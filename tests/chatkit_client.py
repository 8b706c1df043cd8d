"""Driving POST /v1/chatkit the way ChatKit's front end does, with the SDK's own types:
requests are built from its pydantic models, streamed replies parsed into its event types."""

from __future__ import annotations

from typing import Any, Literal

from chatkit.types import (
    ClientEffectEvent,
    InferenceOptions,
    ItemsListParams,
    ItemsListReq,
    Page,
    ThreadAddUserMessageParams,
    ThreadCreateParams,
    ThreadGetByIdParams,
    ThreadItem,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadRetryAfterItemParams,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsGetByIdReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    UserMessageInput,
    UserMessageTextContent,
)
from chatkit.types import Thread as ChatKitThread
from pydantic import BaseModel, TypeAdapter

__all__ = [
    "EVENTS",
    "ITEMS",
    "add_message",
    "body",
    "create_thread",
    "get_thread",
    "list_items",
    "parse_stream",
    "retry_after",
    "session_of",
    "streamed_text",
]

EVENTS: TypeAdapter[ThreadStreamEvent] = TypeAdapter(ThreadStreamEvent)
ITEMS: TypeAdapter[Page[ThreadItem]] = TypeAdapter(Page[ThreadItem])
THREAD: TypeAdapter[ChatKitThread] = TypeAdapter(ChatKitThread)


def _input(text: str, quoted: str | None = None) -> UserMessageInput:
    return UserMessageInput(
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        quoted_text=quoted,
        inference_options=InferenceOptions(),
    )


def body(request: BaseModel) -> bytes:
    return request.model_dump_json().encode()


def create_thread(text: str, **metadata: Any) -> bytes:
    return body(ThreadsCreateReq(params=ThreadCreateParams(input=_input(text)), metadata=metadata))


def add_message(thread_id: str, text: str, quoted: str | None = None) -> bytes:
    return body(
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread_id, input=_input(text, quoted))
        )
    )


def retry_after(thread_id: str, item_id: str) -> bytes:
    """ChatKit's "retry": answer the question `item_id` again."""
    return body(
        ThreadsRetryAfterItemReq(
            params=ThreadRetryAfterItemParams(thread_id=thread_id, item_id=item_id)
        )
    )


def list_items(thread_id: str, order: Literal["asc", "desc"] = "asc", limit: int = 50) -> bytes:
    return body(ItemsListReq(params=ItemsListParams(thread_id=thread_id, order=order, limit=limit)))


def get_thread(thread_id: str) -> bytes:
    return body(ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)))


def parse_stream(raw: str) -> list[ThreadStreamEvent]:
    """ChatKit's SSE body (`data: <event json>` blocks) as SDK events."""
    return [
        EVENTS.validate_json(line[len("data: ") :])
        for line in raw.splitlines()
        if line.startswith("data: ")
    ]


def parse_thread(raw: bytes) -> ChatKitThread:
    return THREAD.validate_json(raw)


def session_of(events: list[ThreadStreamEvent]) -> tuple[str, str]:
    """The (thread id, session token) a new thread's stream hands to the client."""
    effect = next(e for e in events if isinstance(e, ClientEffectEvent))
    return str(effect.data["thread_id"]), str(effect.data["session_token"])


def streamed_text(events: list[ThreadStreamEvent]) -> str:
    return "".join(
        getattr(e.update, "delta", "") for e in events if isinstance(e, ThreadItemUpdatedEvent)
    )


def done_items(events: list[ThreadStreamEvent]) -> list[ThreadItem]:
    return [e.item for e in events if isinstance(e, ThreadItemDoneEvent)]
