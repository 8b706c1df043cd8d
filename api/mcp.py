"""The docs MCP server: `search_docs`, `ask_docs` and `get_page` for coding assistants.

Built on the official `mcp` SDK (`MCPServer`), served two ways from one definition
(`build_mcp_server`):

- on the API at `/mcp` (streamable HTTP, stateless: any API process serves any request), where
  the tools run what the HTTP API runs (`InProcessDocs`): a retrieve job, a chat job (so rate
  limits, the queue's back-pressure, history and the maintainer's report see every question),
  the page catalog;
- over stdio by `bookchat mcp` (cli/mcp.py), whose tools call a bookchat API over HTTP.

The tools' docstrings and typed parameters are their MCP schemas. A failure the caller can act
on (rate limited, queue full, index building, page not found, bad arguments) is a tool error
(`isError: true`) whose text, after the SDK's `Error executing tool <name>: `, starts with our
stable code, e.g. `rate_limited: Too many questions; try again in 12 s.`; protocol errors stay
JSON-RPC errors.

`/mcp` follows the HTTP API's rules: the body size limit, per-IP rate limits on every tool
call, and, as the MCP transport spec asks (DNS rebinding), a request carrying an `Origin` that
is neither the API's own nor one of `BOOKCHAT_CORS_ORIGINS` is refused 403. With
`BOOKCHAT_MCP_TOKEN` set, `/mcp` also needs `Authorization: Bearer <token>` (else 401).
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import AppState
from api.enqueue import enqueue_chat, wait_for_result
from api.limits import check_backpressure, check_rate_limits
from api.routes.pages import PageMarkdown, read_page
from api.routes.retrieve import retrieve_passages
from shared.errors import BookchatError, ErrorCode
from shared.job_models import (
    ChatJobRequest,
    ChatRequest,
    ChatResult,
    Citation,
    PublicPassage,
    RetrieveFilters,
    RetrieveRequest,
)
from shared.jobs import EventType, JobEvent

__all__ = [
    "Answer",
    "Caller",
    "DocsBackend",
    "InProcessDocs",
    "SearchResults",
    "McpTransport",
    "build_mcp_server",
]

INSTRUCTIONS = (
    "Tools over one documentation site. search_docs finds passages (title, heading, URL with "
    "anchor, text); ask_docs answers a question from the site only, with numbered citations, "
    "or says the site does not cover it; get_page returns a whole page as Markdown. Cite the "
    "URLs they return."
)

#: Progress callback: (progress so far, total if known, message).
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


class SearchResults(BaseModel):
    """What `search_docs` returns: passages, best first."""

    passages: list[PublicPassage]


class Answer(BaseModel):
    """What `ask_docs` returns."""

    answer: str = Field(description="Markdown; `[n]` markers refer to `citations[n-1]`")
    citations: list[Citation]
    declined: bool = Field(description="True when the site does not cover the question")
    session_id: str = Field(description="The conversation the question was recorded in")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called a tool: `address` keys the per-IP rate limit ("stdio" over stdio);
    `base_url` is the API as the caller reached it ("" over stdio)."""

    address: str
    base_url: str = ""


class DocsBackend(Protocol):
    """Where the tools' work runs. Raises BookchatError (its code reaches the caller)."""

    async def search(self, request: RetrieveRequest, caller: Caller) -> list[PublicPassage]: ...

    async def ask(self, request: ChatRequest, caller: Caller, progress: Progress) -> ChatResult: ...

    async def page(self, reference: str, caller: Caller) -> PageMarkdown: ...


def _caller(ctx: Context) -> Caller:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        return Caller("stdio")
    address = request.client.host if request.client else "unknown"
    return Caller(address, str(request.base_url).rstrip("/"))


async def _run(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except BookchatError as error:
        raise ToolError(f"{error.code}: {error.message}") from error


def _validated(model: type[BaseModel], **values: Any) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()
        )
        raise ToolError(f"{ErrorCode.VALIDATION_ERROR}: {problems}") from error


def build_mcp_server(backend: DocsBackend, *, name: str = "bookchat") -> MCPServer:
    """The MCP server whose tools run on `backend` (see the module docstring)."""
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool()
    async def search_docs(
        query: Annotated[str, Field(description="What to search for (1-2000 characters)")],
        ctx: Context,
        limit: Annotated[int, Field(description="How many passages, 1-50")] = 5,
        version: Annotated[
            str | None, Field(description="Only this docs version (e.g. `2.0`)")
        ] = None,
        path_prefix: Annotated[
            str | None,
            Field(description="Only pages under this source folder (e.g. `docs/guides`)"),
        ] = None,
    ) -> SearchResults:
        """Search the documentation site. Returns passages, best first: each with the page's
        `title`, the section's `heading`, its `url` (with the #anchor of the heading), the
        source `path`, a rank `score` and the passage `text`. The same ranking as the site's
        search; quote the `url` when you use a passage."""
        filters = None
        if version is not None or path_prefix is not None:
            filters = _validated(RetrieveFilters, version=version, path_prefix=path_prefix)
        request = _validated(RetrieveRequest, query=query, limit=limit, filters=filters)
        passages = await _run(backend.search(request, _caller(ctx)))
        return SearchResults(passages=passages)

    @server.tool()
    async def ask_docs(
        question: Annotated[str, Field(description="The question (1-4000 characters)")],
        ctx: Context,
        selection: Annotated[
            str | None,
            Field(description="Text from a page the question is about (up to 8000 characters)"),
        ] = None,
    ) -> Answer:
        """Ask the documentation site a question. Answers only from the site: Markdown with
        `[n]` markers citing `citations[n-1]` (page title, heading, URL with #anchor), or
        `declined: true` with a short explanation when the site does not cover it. Takes a few
        seconds (progress is reported while the answer is written)."""
        request = _validated(ChatRequest, message=question, selection=selection)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.report_progress(done, total, message)

        result: ChatResult = await _run(backend.ask(request, _caller(ctx), progress))
        return Answer(
            answer=result.answer,
            citations=result.citations,
            declined=result.refused,
            session_id=result.session_id,
        )

    @server.tool()
    async def get_page(
        url_or_path: Annotated[
            str,
            Field(
                description="A page's URL (as search_docs or ask_docs returned it; host, "
                "#anchor and trailing slash optional) or its source path (`docs/intro.md`)"
            ),
        ],
        ctx: Context,
    ) -> PageMarkdown:
        """One whole page of the documentation site as Markdown (title, description, every
        section under its heading, code blocks whole), with its `url`, source `path`, docs
        `version` and `locale`."""
        if not url_or_path.strip() or len(url_or_path) > 2048:
            raise ToolError(f"{ErrorCode.VALIDATION_ERROR}: url_or_path: 1-2048 characters")
        page: PageMarkdown = await _run(backend.page(url_or_path, _caller(ctx)))
        return page

    return server


class InProcessDocs:
    """The tools on the API itself: the same checks and jobs as its HTTP routes."""

    def __init__(self, state: Callable[[], AppState]) -> None:
        self._state = state  # read per call: the app's state exists once its lifespan started

    async def search(self, request: RetrieveRequest, caller: Caller) -> list[PublicPassage]:
        return await retrieve_passages(self._state(), request, client_ip=caller.address)

    async def ask(self, request: ChatRequest, caller: Caller, progress: Progress) -> ChatResult:
        state = self._state()
        session_id = uuid.uuid4()
        await check_rate_limits(state, client_ip=caller.address, session_id=str(session_id))
        await check_backpressure(state)
        asked = ChatJobRequest.model_validate({**request.model_dump(), "session_id": session_id})
        job = await enqueue_chat(state, asked)
        # A queued job ends by `chat_job_expire_s` at the latest, a running one by its hard
        # time limit: past both, the answer cannot come.
        settings = state.settings
        timeout_s = settings.chat_job_expire_s + settings.chat_task_time_limit_s + 15
        tokens = 0

        async def on_event(event: JobEvent) -> None:
            nonlocal tokens
            if event.type is EventType.TOKEN:
                tokens += 1
                await progress(tokens, None, "writing the answer")

        result = await wait_for_result(
            state,
            job.id,
            timeout_s=timeout_s,
            timeout_code=ErrorCode.JOB_TIMEOUT,
            timeout_message="No answer came in time; ask again.",
            on_event=on_event,
        )
        return ChatResult.model_validate(result)

    async def page(self, reference: str, caller: Caller) -> PageMarkdown:
        state = self._state()
        await check_rate_limits(state, client_ip=caller.address, session_id=None)
        base = state.settings.public_base_url.rstrip("/") or caller.base_url
        return await read_page(state, base, reference)


class McpGuard:
    """The `/mcp` endpoint's own checks, before the SDK's transport: the bearer token
    (`BOOKCHAT_MCP_TOKEN`, compared in constant time) and the `Origin` (see the module
    docstring). Errors are our usual JSON `{code, message}`."""

    def __init__(self, app: ASGIApp, *, token: str | None, origins: list[str]) -> None:
        self._app = app
        self._token = token.encode() if token else None
        self._origins = {origin.rstrip("/") for origin in origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope, headers):
            await _reply(send, 403, ErrorCode.FORBIDDEN, "This Origin may not use /mcp.")
            return
        if self._token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self._token
            ):
                await _reply(
                    send,
                    401,
                    ErrorCode.UNAUTHORIZED,
                    "/mcp needs Authorization: Bearer <BOOKCHAT_MCP_TOKEN>.",
                    extra=[(b"www-authenticate", b'Bearer realm="bookchat"')],
                )
                return
        await self._app(scope, receive, send)

    def _origin_allowed(self, origin: str, scope: Scope, headers: Headers) -> bool:
        origin = origin.rstrip("/")
        if origin in self._origins or "*" in self._origins:
            return True
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        return origin == own


async def _reply(
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"code": str(code), "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(extra or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class McpTransport:
    """`/mcp`'s streamable HTTP transport, for the API's router (`route`) and its lifespan
    (`running()`). Each run of the lifespan gets a fresh SDK session manager (the SDK's runs
    once per instance; a test client may start an app's lifespan several times)."""

    def __init__(self, server: MCPServer, *, token: str | None, origins: list[str]) -> None:
        self._server = server
        self._transport: ASGIApp | None = None
        self.route = Route("/mcp", endpoint=McpGuard(self._serve, token=token, origins=origins))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        app = self._server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            # McpGuard checks the Origin; the Host a proxy forwards is not ours to predict.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        (route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/mcp"]
        async with self._server.session_manager.run():
            self._transport = route.app
            try:
                yield
            finally:
                self._transport = None

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._transport is None:
            await _reply(send, 503, ErrorCode.QUEUE_UNAVAILABLE, "/mcp is starting or stopping.")
            return
        await self._transport(scope, receive, send)
