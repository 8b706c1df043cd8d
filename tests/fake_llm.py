"""A protocol-faithful fake of the OpenAI chat-completions HTTP API, for tests and benchmarks.

Why a real HTTP server rather than a mocked client: the pipeline talks to the model through
`openai.AsyncOpenAI` and the Agents SDK's `OpenAIChatCompletionsModel`, and the bugs worth
catching live in that path (SSE parsing, tool-call delta assembly, retries on 429, timeouts,
broken streams). So the fake speaks the wire format those libraries parse, unmodified:

- `POST /v1/chat/completions`, non-streaming (`chat.completion`) and streaming
  (`data: {chat.completion.chunk}` SSE lines, tool-call deltas carrying index/id/name and then
  argument fragments, a final chunk with `finish_reason`, a `choices: []` usage chunk when
  `stream_options.include_usage` is set, then `data: [DONE]`);
- OpenAI-shaped error bodies (`{"error": {...}}`) with `retry-after` headers, and OpenRouter's
  (`openrouter_error`: a numeric code, `metadata.provider_name`, a 429's reset);
- a request's `max_tokens` cutting the answer with `finish_reason: "length"`, `tool_choice:
  "none"` answered in text, reasoning sent in `reasoning_content` / `reasoning` fields;
- `GET /v1/models`.

`PROVIDER_SHAPES` is a corpus of the ways real providers' models write a cited answer
(`[1, 2]`, `【1】`, `[^1]`, `<think>` blocks split across chunks, ...), each a scripted reply.

What each request gets is decided, in this order, by: the model's one-shot queue
(`enqueue(..., model=)`), the model's sticky script (`script_for_model`), the shared one-shot
queue (`enqueue`), the `respond` hook, and finally the default "agent-like" behaviour (call
`search_docs` with the user's text, then answer quoting the tool output and citing its first
passage marker). Every request body is recorded (`requests`, `model_counts`).

Standalone, for benchmarks::

    python -m tests.fake_llm --port 9999 --latency-first-token 0.4 --tokens-per-s 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeAlias

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
    from openai import AsyncOpenAI

__all__ = [
    "DEFAULT_MODEL",
    "CutStream",
    "Error",
    "FakeLLM",
    "Hang",
    "Malformed",
    "PROVIDER_SHAPES",
    "ProviderShape",
    "Recorded",
    "Reply",
    "Responder",
    "StreamError",
    "Text",
    "ToolCall",
    "ToolCalls",
    "cut_stream",
    "error",
    "hang",
    "malformed",
    "openrouter_error",
    "stream_error",
    "text",
    "tool_call",
    "tool_calls",
]

DEFAULT_MODEL = "fake-model"
_FINGERPRINT = "fp_fakellm"
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Text:
    """An assistant text answer; streamed as word-sized deltas when the request streams.

    `latency_first_token` / `tokens_per_s` override the server's knobs for this reply only.
    `pieces`: the exact content deltas to stream (e.g. a `<think>` tag split in two), instead
    of word-sized ones. `reasoning`: text sent before the content in the message field
    `reasoning_field` (`reasoning_content` as DeepSeek's API, `reasoning` as OpenRouter's).
    A request's `max_tokens` (or `max_completion_tokens`) cuts the content after that many
    pieces with `finish_reason: "length"`, as a real provider does.
    """

    content: str
    finish_reason: str = "stop"
    latency_first_token: float | None = None
    tokens_per_s: float | None = None
    pieces: tuple[str, ...] | None = None
    reasoning: str | None = None
    reasoning_field: str = "reasoning_content"

    def content_pieces(self) -> list[str]:
        return list(self.pieces) if self.pieces is not None else _pieces(self.content)

    def limited(self, body: dict[str, Any]) -> Text:
        """This reply under the request's output-token limit (one piece a token)."""
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = self.content_pieces()
        if not isinstance(limit, int) or len(pieces) <= limit:
            return self
        kept = tuple(pieces[:limit])
        return replace(self, content="".join(kept), pieces=kept, finish_reason="length")


@dataclass(frozen=True)
class ToolCall:
    """One function tool call; `arguments` is a dict (JSON-encoded on the wire) or raw string.

    A raw string lets a test send arguments that are not valid JSON, as real models sometimes do.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class ToolCalls:
    """An assistant turn that calls one or more tools (optionally with some text before)."""

    calls: tuple[ToolCall, ...]
    content: str | None = None
    latency_first_token: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class Error:
    """An HTTP error with an OpenAI-shaped body, sent before any streaming starts.

    `should_retry` sets `x-should-retry`, which the openai client obeys over its own status
    rules, so a test can make a 500 non-retried without touching the client's `max_retries`.
    """

    status: int
    retry_after: float | None = None
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    should_retry: bool | None = None
    metadata: dict[str, Any] | None = None  # OpenRouter's `error.metadata` (provider_name, ...)


@dataclass(frozen=True)
class Hang:
    """Never answer: hold the request until the client disconnects (or the server stops)."""


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not valid JSON (for a stream: one SSE `data:` line that is not)."""

    body: str = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{'


@dataclass(frozen=True)
class CutStream:
    """Send `after_chunks` SSE chunks of `reply`, then stop without `data: [DONE]`.

    `abort=True` (default) drops the TCP connection mid-body, as a crashed upstream or a proxy
    timeout does; the openai client raises `APIConnectionError`. `abort=False` ends the body
    cleanly without `[DONE]`, which the openai client silently accepts as end-of-stream: useful
    to check that the caller notices the missing `finish_reason` itself. `reply=None` cuts
    whatever the hook/default behaviour would have answered. For a non-streaming request the
    JSON body is cut in half.
    """

    after_chunks: int = 1
    reply: Text | ToolCalls | None = None
    abort: bool = True


@dataclass(frozen=True)
class StreamError:
    """Stream `after_chunks` chunks of `reply`, then an in-band `data: {"error": ...}` event.

    That is how OpenAI reports failures after the 200 has been sent; the client raises
    `openai.APIError` from inside the iteration. `in_chunk=True` sends OpenRouter's form
    instead: a `chat.completion.chunk` that carries the `error` object next to a choice with
    `finish_reason: "error"`, then `[DONE]`. A non-streaming request gets a plain 500.
    """

    after_chunks: int = 1
    message: str = "The server had an error while processing your request."
    reply: Text | ToolCalls | None = None
    in_chunk: bool = False


Reply: TypeAlias = Text | ToolCalls | Error | Hang | Malformed | CutStream | StreamError
Responder: TypeAlias = Callable[[dict[str, Any]], "Reply | None | Awaitable[Reply | None]"]
"""A hook deciding the reply from the request JSON; returning None defers to the default."""

Script: TypeAlias = Reply | Responder
_REPLY_TYPES = (Text, ToolCalls, Error, Hang, Malformed, CutStream, StreamError)


def text(
    content: str,
    *,
    latency_first_token: float | None = None,
    tokens_per_s: float | None = None,
    finish_reason: str = "stop",
    pieces: Sequence[str] | None = None,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
) -> Text:
    """Assistant text (finish_reason "length" simulates a truncated answer; `pieces`, the
    exact deltas; `reasoning`, a reasoning field before the content: see `Text`)."""
    return Text(
        content,
        finish_reason,
        latency_first_token,
        tokens_per_s,
        None if pieces is None else tuple(pieces),
        reasoning,
        reasoning_field,
    )


def tool_call(
    name: str,
    arguments: dict[str, Any] | str | None = None,
    *,
    call_id: str | None = None,
    content: str | None = None,
    latency_first_token: float | None = None,
    tokens_per_s: float | None = None,
) -> ToolCalls:
    """One tool call, e.g. `tool_call("search_docs", {"query": "install"})`."""
    call = ToolCall(name, {} if arguments is None else arguments, call_id)
    return ToolCalls((call,), content, latency_first_token, tokens_per_s)


def tool_calls(*calls: ToolCall | tuple[str, dict[str, Any] | str]) -> ToolCalls:
    """Several parallel tool calls: `tool_calls(("search_docs", {...}), ("search_docs", {...}))`."""
    return ToolCalls(tuple(c if isinstance(c, ToolCall) else ToolCall(c[0], c[1]) for c in calls))


def error(
    status: int,
    *,
    retry_after: float | None = None,
    message: str | None = None,
    type: str | None = None,  # noqa: A002 - mirrors the wire field name
    code: str | int | None = None,
    should_retry: bool | None = None,
    metadata: dict[str, Any] | None = None,
) -> Error:
    """An HTTP error: `error(429, retry_after=0.01)`, `error(500)`, `error(400, message=...)`;
    `metadata` as OpenRouter sends it (see `openrouter_error`)."""
    return Error(status, retry_after, message, type, code, should_retry, metadata)


def openrouter_error(
    status: int, message: str, *, provider: str | None = None, reset_ms: int | None = None
) -> Error:
    """An error as OpenRouter sends it (https://openrouter.ai/docs/api-reference/errors): its
    numeric `code`, and `metadata` naming the upstream `provider_name` ("Provider returned
    error") or, for a 429, the rate limit's `headers` with `X-RateLimit-Reset` (epoch ms)."""
    metadata: dict[str, Any] = {}
    if provider is not None:
        metadata["provider_name"] = provider
        metadata["raw"] = '{"error": "upstream failure"}'
    if reset_ms is not None:
        metadata["headers"] = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset_ms),
        }
    return Error(status, message=message, code=status, metadata=metadata or None)


def hang() -> Hang:
    """Never answer; the client's timeout decides when it ends."""
    return Hang()


def malformed(body: str | None = None) -> Malformed:
    """A 200 with an invalid JSON body."""
    return Malformed() if body is None else Malformed(body)


def cut_stream(
    after_chunks: int = 1, reply: Text | ToolCalls | None = None, *, abort: bool = True
) -> CutStream:
    """Stop the stream after `after_chunks` chunks, without `[DONE]`."""
    return CutStream(after_chunks, reply, abort)


def stream_error(
    after_chunks: int = 1,
    message: str | None = None,
    reply: Text | ToolCalls | None = None,
    *,
    in_chunk: bool = False,
) -> StreamError:
    """An in-band SSE error event after `after_chunks` chunks (`in_chunk`: OpenRouter's form)."""
    if message is None:
        return StreamError(after_chunks, reply=reply, in_chunk=in_chunk)
    return StreamError(after_chunks, message, reply, in_chunk)


_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


# --------------------------------------------------------------------------- recording


@dataclass
class Recorded:
    """One request as received, and the kind of reply it got (for asserting fallbacks)."""

    json: dict[str, Any]
    headers: dict[str, str]
    model: str
    stream: bool
    reply: str = ""
    at: float = field(default_factory=time.monotonic)


class _Stopping(Exception):
    """Raised inside a handler when the server shuts down, to end hung requests promptly."""


class _AbortConnection(Exception):
    """Raised after the response started, which makes uvicorn drop the TCP connection."""


class _QuietAbort(logging.Filter):
    """Hide uvicorn's traceback for connections we drop on purpose (it is not a failure)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        return not isinstance(exc, _AbortConnection | _Stopping)


logging.getLogger("uvicorn.error").addFilter(_QuietAbort())


# --------------------------------------------------------------------------- helpers

_PIECE = re.compile(r"\s*\S+|\s+")


def _pieces(s: str) -> list[str]:
    """Word-sized pieces (leading space attached), roughly how a tokenizer streams text."""
    return _PIECE.findall(s) or ([s] if s else [])


def _message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            names.append(str(tool["function"].get("name", "")))
    return names


def _estimate_tokens(value: Any) -> int:
    """~4 characters a token: good enough for usage numbers that tests and benches read."""
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


def _first_sentence(s: str) -> str:
    flat = " ".join(s.split())
    match = re.match(r"(.+?[.!?])(?:\s|$)", flat)
    return (match.group(1) if match else flat[:200]).strip()


# --------------------------------------------------------------------------- the server


class FakeLLM:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 (ephemeral port), in a thread.

    Use as a context manager (`with FakeLLM() as fake:`), via the `fake_llm` pytest fixture,
    or `start()`/`stop()`. Thread-safe: scripting and reading records from the test thread
    while the server's own event loop serves requests.

    Args:
        latency_first_token: seconds before the first token (streaming) or before the
            whole answer (non-streaming); per-reply overrides win.
        tokens_per_s: pacing between deltas (and added to non-stream latency); None = no pacing.
        respond: hook consulted when no queue/script applies; returning None defers to default.
        models: models listed by `GET /v1/models` besides those seen or scripted.
        search_tool: the tool the default behaviour calls.
        citation: the marker the default answer cites; None = the first marker matched by
            `citation_pattern` in the tool output, falling back to `fallback_citation`.
        api_key: when set, requests with another bearer token get a 401, as OpenAI does.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_first_token: float = 0.0,
        tokens_per_s: float | None = None,
        respond: Responder | None = None,
        models: Sequence[str] = (DEFAULT_MODEL,),
        search_tool: str = "search_docs",
        citation: str | None = None,
        citation_pattern: str = r"\[\d{1,3}\]",
        fallback_citation: str = "[1]",
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_first_token = latency_first_token
        self.tokens_per_s = tokens_per_s
        self.respond = respond
        self.search_tool = search_tool
        self.citation = citation
        self.citation_pattern = re.compile(citation_pattern)
        self.fallback_citation = fallback_citation
        self.api_key = api_key
        self._configured_models = list(models)
        self._lock = threading.Lock()
        self._queue: deque[Script] = deque()
        self._model_queues: dict[str, deque[Script]] = {}
        self._sticky: dict[str, Script] = {}
        self._records: list[Recorded] = []
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[AsyncOpenAI] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
            ]
        )

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """The URL to give `AsyncOpenAI(base_url=...)`, ending in `/v1`."""
        return f"http://{self.host}:{self.port}/v1"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )

    def start(self) -> FakeLLM:
        """Bind the port (ephemeral unless given) and serve in a daemon thread until ready."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._stopping.clear()
        server = uvicorn.Server(self._config())
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-llm", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake LLM server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving; hung requests are released so shutdown takes milliseconds."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeLLM:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Close the clients made by `client()` on this loop, then stop the server.

        Closing them here, not at garbage collection, avoids "Event loop is closed" noise
        from httpx connection pools that outlive the test's event loop.
        """
        await self.aclose_clients()
        await asyncio.to_thread(self.stop)

    async def aclose_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()

    def serve_forever(self) -> None:
        """Serve in the calling thread (the standalone/benchmark mode); Ctrl-C stops."""
        config = self._config()
        config.host, config.port = self.host, self.port
        uvicorn.Server(config).run()

    # ----------------------------------------------------------------- clients

    def client(self, *, max_retries: int = 0, timeout: float = 5.0) -> AsyncOpenAI:
        """An `AsyncOpenAI` pointed here; no retries by default so error tests stay fast."""
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key or "x",
            max_retries=max_retries,
            timeout=timeout,
        )
        self._clients.append(client)
        return client

    def agents_model(
        self,
        model: str = DEFAULT_MODEL,
        *,
        client: AsyncOpenAI | None = None,
        max_retries: int = 0,
        timeout: float = 5.0,
    ) -> OpenAIChatCompletionsModel:
        """The Agents SDK model the pipeline uses, pointed at this server."""
        from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel

        if client is None:
            client = self.client(max_retries=max_retries, timeout=timeout)
        return OpenAIChatCompletionsModel(model=model, openai_client=client)

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *replies: Script, model: str | None = None) -> FakeLLM:
        """One-shot replies consumed in order (for any model, or only for `model`)."""
        with self._lock:
            if model is None:
                self._queue.extend(replies)
            else:
                self._model_queues.setdefault(model, deque()).extend(replies)
        return self

    def script_for_model(self, model: str, reply: Script | None) -> FakeLLM:
        """Every request for `model` gets `reply` (e.g. always 429) until cleared with None."""
        with self._lock:
            if reply is None:
                self._sticky.pop(model, None)
            else:
                self._sticky[model] = reply
        return self

    def pending(self, model: str | None = None) -> int:
        """How many one-shot replies are still queued (shared queue, or `model`'s)."""
        with self._lock:
            queue = self._queue if model is None else self._model_queues.get(model, deque())
            return len(queue)

    def reset(self) -> None:
        """Forget queues, sticky scripts and records (for a server shared across tests)."""
        with self._lock:
            self._queue.clear()
            self._model_queues.clear()
            self._sticky.clear()
            self._records.clear()

    # ----------------------------------------------------------------- recording

    @property
    def records(self) -> list[Recorded]:
        with self._lock:
            return list(self._records)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completions request body received, in order."""
        with self._lock:
            return [r.json for r in self._records]

    @property
    def last_request(self) -> dict[str, Any]:
        with self._lock:
            if not self._records:
                raise AssertionError("the fake LLM has received no request")
            return self._records[-1].json

    @property
    def model_counts(self) -> Counter[str]:
        """Requests per model, e.g. `{"primary": 1, "fallback": 1}`."""
        with self._lock:
            return Counter(r.model for r in self._records)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json for r in self._records if r.model == model]

    @property
    def models(self) -> list[str]:
        """Configured, scripted and seen models, first-seen order."""
        with self._lock:
            names = [*self._configured_models, *self._sticky, *self._model_queues]
            names += [r.model for r in self._records]
        return list(dict.fromkeys(n for n in names if n))

    # ----------------------------------------------------------------- deciding

    def default_reply(self, body: dict[str, Any]) -> Text | ToolCalls:
        """The agent-like default: search with the user's text, then answer citing a passage.

        The decision looks only at the current turn (messages after the last user message), so
        a conversation whose history holds earlier tool results still searches again.
        """
        messages: list[dict[str, Any]] = [
            m for m in body.get("messages") or [] if isinstance(m, dict)
        ]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        question = _message_text(messages[last_user]) if last_user >= 0 else ""
        tool_outputs = [
            _message_text(m) for m in messages[last_user + 1 :] if m.get("role") == "tool"
        ]
        if tool_outputs:
            return Text(self._cite(tool_outputs[0]))
        if self.search_tool in _tool_names(body):
            return tool_call(self.search_tool, {"query": question})
        return Text(f"This is a fake answer to: {question}" if question else "Hello.")

    def _cite(self, tool_output: str) -> str:
        """Quote the first sentence of the first passage and cite its marker."""
        match = self.citation_pattern.search(tool_output)
        marker = self.citation or (match.group(0) if match else self.fallback_citation)
        passage = tool_output[match.end() :] if match else tool_output
        # The pipeline's passages start "[n] Breadcrumb > Heading\n<text>": skip the heading.
        head, sep, rest = passage.strip().partition("\n")
        sentence = _first_sentence(rest if sep and rest.strip() else head)
        if not sentence:
            return f"The documentation does not say more. {marker}"
        return f"{sentence} {marker}"

    async def _decide(self, body: dict[str, Any], model: str) -> Reply:
        with self._lock:
            queue = self._model_queues.get(model)
            script: Script | None
            if queue:
                script = queue.popleft()
            elif model in self._sticky:
                script = self._sticky[model]
            elif self._queue:
                script = self._queue.popleft()
            else:
                script = None
        reply = await self._run_script(script, body)
        if isinstance(reply, ToolCalls) and body.get("tool_choice") == "none":
            # As OpenAI does: with tool_choice "none" the model answers in text.
            reply = self.default_reply({**body, "tools": []})
        if isinstance(reply, CutStream | StreamError) and reply.reply is None:
            inner = await self._run_script(None, body)
            if isinstance(inner, Text | ToolCalls):
                reply = replace(reply, reply=inner)
            else:
                reply = replace(reply, reply=self.default_reply(body))
        return reply

    async def _run_script(self, script: Script | None, body: dict[str, Any]) -> Reply:
        if script is None:
            script = self.respond
        if script is None:
            return self.default_reply(body)
        if isinstance(script, _REPLY_TYPES):
            return script
        result = script(body)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return self.default_reply(body)
        if not isinstance(result, _REPLY_TYPES):
            raise TypeError(f"respond hook returned {result!r}, not a reply")
        return result

    # ----------------------------------------------------------------- HTTP handlers

    async def _list_models(self, request: Request) -> Response:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake-llm"}
            for m in self.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat_completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error_response(error(400, message="We could not parse the JSON body."))
        if not isinstance(body, dict) or not body.get("model") or "messages" not in body:
            return self._error_response(
                error(400, message="'model' and 'messages' are required properties.")
            )
        authorization = request.headers.get("authorization", "")
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return self._error_response(error(401))
        model = str(body["model"])
        stream = bool(body.get("stream"))
        record = Recorded(body, dict(request.headers), model, stream)
        with self._lock:
            self._records.append(record)
        reply = await self._decide(body, model)
        record.reply = type(reply).__name__
        try:
            return await self._reply(request, body, model, stream, reply)
        except _Stopping:
            return self._error_response(error(503, message="The fake LLM is shutting down."))

    async def _reply(
        self, request: Request, body: dict[str, Any], model: str, stream: bool, reply: Reply
    ) -> Response:
        if isinstance(reply, Error):
            return self._error_response(reply)
        if isinstance(reply, Hang):
            while not await request.is_disconnected():
                await self._sleep(0.02)
            return Response(status_code=499)
        if isinstance(reply, Malformed):
            if stream:
                return self._sse([f"data: {reply.body}\n\n", "data: [DONE]\n\n"])
            return Response(reply.body, media_type="application/json")
        if not stream and isinstance(reply, StreamError):
            # Without a stream there is no in-band channel: OpenAI reports this as a 500.
            return self._error_response(error(500, message=reply.message))
        if not stream:
            completion, n_tokens = self._completion(body, model, reply)
            await self._sleep(self._ttft(reply) + self._per_token(reply) * max(0, n_tokens - 1))
            payload = json.dumps(completion, ensure_ascii=False)
            if isinstance(reply, CutStream):
                return self._sse([payload[: len(payload) // 2]], abort=True, media="json")
            return Response(payload, media_type="application/json", headers=self._headers())
        return StreamingResponse(
            self._stream(body, model, reply),
            media_type="text/event-stream",
            headers=self._headers(),
        )

    def _headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "1"}

    def _error_response(self, err: Error) -> Response:
        message, kind, code = _ERROR_DEFAULTS.get(
            err.status,
            (
                f"HTTP {err.status}",
                "server_error" if err.status >= 500 else "invalid_request_error",
                None,
            ),
        )
        payload: dict[str, Any] = {
            "error": {
                "message": err.message or message,
                "type": err.type or kind,
                "param": None,
                "code": err.code or code,
            }
        }
        if err.metadata is not None:
            payload["error"]["metadata"] = err.metadata
        headers = self._headers()
        if err.retry_after is not None:
            headers["retry-after"] = f"{err.retry_after:g}"
            headers["retry-after-ms"] = str(int(err.retry_after * 1000))
        if err.should_retry is not None:
            headers["x-should-retry"] = "true" if err.should_retry else "false"
        return JSONResponse(payload, status_code=err.status, headers=headers)

    def _sse(self, parts: list[str], *, abort: bool = False, media: str = "sse") -> Response:
        async def body() -> AsyncIterator[str]:
            for part in parts:
                yield part
            if abort:
                raise _AbortConnection

        media_type = "text/event-stream" if media == "sse" else "application/json"
        return StreamingResponse(body(), media_type=media_type, headers=self._headers())

    # ----------------------------------------------------------------- timing

    def _ttft(self, reply: Reply) -> float:
        own = getattr(reply, "latency_first_token", None)
        inner = getattr(reply, "reply", None)
        if own is None and inner is not None:
            own = getattr(inner, "latency_first_token", None)
        return self.latency_first_token if own is None else float(own)

    def _per_token(self, reply: Reply) -> float:
        own = getattr(reply, "tokens_per_s", None)
        inner = getattr(reply, "reply", None)
        if own is None and inner is not None:
            own = getattr(inner, "tokens_per_s", None)
        rate = self.tokens_per_s if own is None else own
        return 1.0 / rate if rate else 0.0

    async def _sleep(self, seconds: float) -> None:
        """Sleep in slices so a server shutdown interrupts long latencies and hangs."""
        end = time.monotonic() + seconds
        while True:
            if self._stopping.is_set():
                raise _Stopping
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    # ----------------------------------------------------------------- wire format

    def _usage(self, body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        prompt = _estimate_tokens(body.get("messages")) + (
            _estimate_tokens(body["tools"]) if body.get("tools") else 0
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _content_of(reply: Reply) -> Text | ToolCalls:
        inner = reply.reply if isinstance(reply, CutStream | StreamError) else reply
        if not isinstance(inner, Text | ToolCalls):
            raise TypeError(f"{type(reply).__name__} carries no content")
        return inner

    def _completion(
        self, body: dict[str, Any], model: str, reply: Reply
    ) -> tuple[dict[str, Any], int]:
        """A `chat.completion` object, and its completion-token count (for pacing)."""
        content = self._content_of(reply)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if isinstance(content, Text):
            content = content.limited(body)
            message["content"] = content.content
            if content.reasoning:
                message[content.reasoning_field] = content.reasoning
            finish, n_tokens = content.finish_reason, len(content.content_pieces())
        else:
            message["content"] = content.content
            message["tool_calls"] = [
                {
                    "id": call.call_id or f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for call in content.calls
            ]
            finish = "tool_calls"
            n_tokens = len(_pieces(content.content or "")) + sum(
                len(_pieces(c.arguments_json())) + 1 for c in content.calls
            )
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": _FINGERPRINT,
            "service_tier": "default",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": self._usage(body, n_tokens),
        }
        return completion, n_tokens

    def _chunks(
        self, body: dict[str, Any], model: str, content: Text | ToolCalls
    ) -> list[tuple[dict[str, Any], int]]:
        """The `chat.completion.chunk` objects of a streamed reply, each with its token count.

        Mirrors OpenAI: the first delta carries the role; a tool call opens with its index, id,
        type and name and empty arguments, then argument fragments carry only index+arguments;
        the last choice chunk has an empty delta and the finish_reason; with
        `stream_options.include_usage` every chunk has `usage: null` and a final chunk with
        `choices: []` carries the usage.
        """
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": _FINGERPRINT,
                "service_tier": "default",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                c["usage"] = None
            return c

        out: list[tuple[dict[str, Any], int]] = []
        if isinstance(content, Text):
            content = content.limited(body)
        text_part = content.content
        if isinstance(content, Text) or text_part:
            out.append((chunk({"role": "assistant", "content": "", "refusal": None}), 0))
            if isinstance(content, Text) and content.reasoning:
                field_name = content.reasoning_field
                out += [
                    (chunk({"content": None, field_name: piece}), 1)
                    for piece in _pieces(content.reasoning)
                ]
            pieces = (
                content.content_pieces() if isinstance(content, Text) else _pieces(text_part or "")
            )
            out += [(chunk({"content": piece}), 1) for piece in pieces]
        if isinstance(content, ToolCalls):
            for index, call in enumerate(content.calls):
                opening: dict[str, Any] = {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.call_id or f"call_{uuid.uuid4().hex[:24]}",
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
                if not out:
                    opening = {"role": "assistant", "content": None, **opening}
                out.append((chunk(opening), 1))
                out += [
                    (chunk({"tool_calls": [{"index": index, "function": {"arguments": frag}}]}), 1)
                    for frag in _pieces(call.arguments_json())
                ]
            finish = "tool_calls"
        else:
            finish = content.finish_reason
        n_tokens = sum(n for _, n in out)
        out.append((chunk({}, finish), 0))
        if include_usage:
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(body, n_tokens)
            out.append((usage_chunk, 0))
        return out

    async def _stream(self, body: dict[str, Any], model: str, reply: Reply) -> AsyncIterator[str]:
        chunks = self._chunks(body, model, self._content_of(reply))
        limit = len(chunks)
        if isinstance(reply, CutStream | StreamError):
            limit = min(limit, max(0, reply.after_chunks))
        ttft, per_token = self._ttft(reply), self._per_token(reply)
        await self._sleep(ttft)
        first_token_sent = False
        try:
            for payload, tokens in chunks[:limit]:
                if tokens:
                    if first_token_sent:
                        await self._sleep(per_token * tokens)
                    first_token_sent = True
                yield f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
        except _Stopping:
            raise _AbortConnection from None
        if isinstance(reply, StreamError):
            err: dict[str, Any] = {
                "error": {
                    "message": reply.message,
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            if reply.in_chunk:  # OpenRouter: the error rides on a chunk that finishes "error"
                first = chunks[0][0]
                err = {
                    **{k: first[k] for k in ("id", "object", "created", "model")},
                    "error": {"code": 502, "message": reply.message},
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                }
                yield f"data: {json.dumps(err)}\n\n"
                yield "data: [DONE]\n\n"
                return
            yield f"data: {json.dumps(err)}\n\n"
            return
        if isinstance(reply, CutStream):
            if reply.abort:
                raise _AbortConnection
            return
        yield "data: [DONE]\n\n"


# --------------------------------------------------------------------------- provider corpus


@dataclass(frozen=True)
class ProviderShape:
    """One way real providers' models write a cited answer, as a scripted reply.

    `write(sentence, url)` is the answer, given a plain sentence to cite (`SHAPE_SENTENCE`) and
    the URL of passage [1] (for answers that link instead of citing); `cites` the passage
    numbers it means to cite; `reasoning_says` text of its reasoning that must reach no
    reader."""

    name: str
    seen_in: str
    write: Callable[[str, str], Text]
    cites: tuple[int, ...] = (1,)
    reasoning_says: str | None = None

    def responder(self, url: str) -> Responder:
        """Search first (the default), then answer in this shape from the passages found."""

        def respond(body: dict[str, Any]) -> Reply | None:
            messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
            last_user = max(
                (i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1
            )
            searched = any(m.get("role") == "tool" for m in messages[last_user + 1 :])
            return self.write(SHAPE_SENTENCE, url) if searched else None

        return respond


SHAPE_SENTENCE = "The arm returns to its home pose with one command"
_THOUGHT = "[2] is about the proxy, maybe irrelevant. NOT_COVERED would be wrong here."

#: Answer shapes reported from real providers (one case each; texts are our own).
PROVIDER_SHAPES: tuple[ProviderShape, ...] = (
    ProviderShape("openai-brackets", "OpenAI gpt-4o-mini", lambda s, u: text(f"{s} [1].")),
    ProviderShape(
        "comma-list",
        "OpenRouter free models (Llama 3.3 70B, Mistral Small)",
        lambda s, u: text(f"{s} [1, 2]."),
        cites=(1, 2),
    ),
    ProviderShape(
        "list-without-spaces", "Gemma 3 (OpenRouter free)", lambda s, u: text(f"{s} [1,2]."), (1, 2)
    ),
    ProviderShape("range", "Llama 3.1 8B", lambda s, u: text(f"{s} [1-3]."), cites=(1, 2, 3)),
    ProviderShape("source-word", "Llama 3.2 3B", lambda s, u: text(f"{s} [Source 1].")),
    ProviderShape("full-width", "Qwen2.5, GLM-4", lambda s, u: text(f"{s}【1】")),
    ProviderShape("full-width-dagger", "gpt-oss-20b", lambda s, u: text(f"{s} 【1†source】.")),
    ProviderShape(
        "footnote",
        "Gemini 2.0 Flash (OpenAI-compatible API)",
        lambda s, u: text(f"{s}[^1]\n\n[^1]: From the documentation."),
    ),
    ProviderShape("parenthesised", "Phi-3 mini, Mistral 7B", lambda s, u: text(f"{s} (1)")),
    ProviderShape(
        "markdown-link",
        "GPT-4o, Claude via OpenRouter (linking the page instead of citing)",
        lambda s, u: text(f"{s} See [this section]({u}) for details."),
    ),
    ProviderShape(
        "think-tags-split",
        "DeepSeek R1, QwQ (think block in the content, tags split across chunks)",
        lambda s, u: text(
            f"<think>{_THOUGHT}</think>\n\n{s} [1].",
            pieces=["<th", "ink>", _THOUGHT[:20], _THOUGHT[20:], "</thi", "nk>\n\n", s, " [1]."],
        ),
        reasoning_says="maybe irrelevant",
    ),
    ProviderShape(
        "closing-tag-only",
        "DeepSeek R1 distills (the host's template opens the block)",
        lambda s, u: text(f"{_THOUGHT}\n</think>\n\n{s} [1]."),
        reasoning_says="maybe irrelevant",
    ),
    ProviderShape(
        "reasoning-content-field",
        "DeepSeek API, Qwen3 on DashScope (`reasoning_content`)",
        lambda s, u: text(f"{s} [1].", reasoning=_THOUGHT),
        reasoning_says="maybe irrelevant",
    ),
    ProviderShape(
        "reasoning-field",
        "OpenRouter reasoning models (`reasoning`)",
        lambda s, u: text(f"{s} [1].", reasoning=_THOUGHT, reasoning_field="reasoning"),
        reasoning_says="maybe irrelevant",
    ),
)


# --------------------------------------------------------------------------- pytest


if "pytest" in sys.modules:  # only under pytest: the standalone server skips ~1 s of imports
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def fake_llm() -> AsyncIterator[FakeLLM]:
        """A started `FakeLLM` for one test; import it into a conftest to use it by name.

        Async so that clients made with `fake_llm.client()` are closed on the test's own loop.
        """
        async with FakeLLM() as fake:
            yield fake


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the default agent-like behaviour on a fixed port, for benchmarks."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_llm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--latency-first-token", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--tokens-per-s", type=float, default=None)
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        help="a model to list on /v1/models (repeatable)",
    )
    parser.add_argument(
        "--citation",
        default=None,
        help="fixed citation marker (default: first marker in the tool output)",
    )
    args = parser.parse_args(argv)
    fake = FakeLLM(
        host=args.host,
        port=args.port,
        latency_first_token=args.latency_first_token,
        tokens_per_s=args.tokens_per_s,
        models=args.models or (DEFAULT_MODEL,),
        citation=args.citation,
    )
    logging.basicConfig(level=logging.INFO)
    _log.info("fake LLM on %s", fake.base_url)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()


if __name__ == "__main__":
    main()
