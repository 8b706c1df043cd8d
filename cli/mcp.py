"""`bookchat mcp`: the docs MCP server over stdio, for an assistant on this machine.

The tools are the API's own (`api.mcp.build_mcp_server`); here they call a running bookchat
API over HTTP (`HttpDocs`): `POST /v1/retrieve`, `POST /v1/chat` then its status URL
(long-polled), `GET /v1/page`. So the answers, limits and history are the API's, whether it is
`bookchat dev` on this machine or a deployment. stdout carries only MCP's JSON-RPC; logs go to
stderr.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from api.mcp import Caller, Progress, build_mcp_server
from api.routes.pages import PageMarkdown
from shared.errors import BookchatError, ErrorCode, known_code
from shared.job_models import ChatRequest, ChatResult, PublicPassage, RetrieveRequest

__all__ = ["HttpDocs", "serve_stdio"]

_TERMINAL = {"succeeded", "failed", "expired"}


class HttpDocs:
    """The tools' work, done by a bookchat API at `base_url`."""

    def __init__(self, base_url: str, *, answer_timeout_s: float = 900.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._answer_timeout_s = answer_timeout_s

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self._base_url, timeout=70)

    async def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            code, message = str(body["code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code, message = ErrorCode.INTERNAL_ERROR, f"HTTP {response.status_code}"
        retry = response.headers.get("retry-after")
        raise BookchatError(
            known_code(code), message + (f" (retry after {retry} s)" if retry else "")
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._http() as http:
                return await self._json(await http.request(method, path, **kwargs))
        except httpx.TransportError as error:
            raise BookchatError(
                ErrorCode.QUEUE_UNAVAILABLE,
                f"No bookchat API at {self._base_url} ({error!r}); is `bookchat dev` running? "
                "(`bookchat mcp --url` names another)",
            ) from error

    async def search(self, request: RetrieveRequest, caller: Caller) -> list[PublicPassage]:
        body = request.model_dump(mode="json", exclude_none=True)
        passages = await self._call("POST", "/v1/retrieve", json=body)
        return [PublicPassage.model_validate(p) for p in passages]

    async def ask(self, request: ChatRequest, caller: Caller, progress: Progress) -> ChatResult:
        body = request.model_dump(mode="json", exclude_none=True)
        accepted = await self._call("POST", "/v1/chat", json=body)
        deadline = time.monotonic() + self._answer_timeout_s
        polls = 0
        while time.monotonic() < deadline:
            job = await self._call("GET", f"{accepted['status_url']}&wait=30")
            if job["status"] == "succeeded":
                return ChatResult.model_validate(job["result"])
            if job["status"] in _TERMINAL:
                error = job.get("error") or {}
                raise BookchatError(
                    known_code(str(error.get("code") or ErrorCode.INTERNAL_ERROR)),
                    str(error.get("message") or f"The question ended {job['status']}."),
                )
            polls += 1
            await progress(polls, None, f"the answer is {job['status']}")
        raise BookchatError(ErrorCode.JOB_TIMEOUT, "No answer came in time; ask again.")

    async def page(self, reference: str, caller: Caller) -> PageMarkdown:
        page = await self._call("GET", "/v1/page", params={"ref": reference})
        return PageMarkdown.model_validate(page)


def serve_stdio(base_url: str) -> None:
    """Serve the MCP tools on stdin/stdout until the client closes them."""
    build_mcp_server(HttpDocs(base_url)).run("stdio")
