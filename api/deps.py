"""Long-lived clients built in the app's lifespan, handed to routes as dependencies."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import ApiError
from api.followers import Followers
from shared.access_tokens import (
    issue_session_token,
    issue_stream_token,
    read_session_token,
    session_revoked_at,
)
from shared.errors import ErrorCode
from shared.history import History
from shared.jobs import JobStore
from shared.settings import Settings

__all__ = [
    "AdminDep",
    "AppState",
    "HistoryDep",
    "SessionTokenDep",
    "StateDep",
    "check_admin",
    "check_session_access",
    "get_history",
    "new_session_token",
    "session_of",
    "stream_token",
    "get_state",
]


@dataclass(slots=True)
class AppState:
    settings: Settings
    redis: Redis  # one pool: the job store, rate limits, queue depths, metrics
    jobs: JobStore
    sender: Celery
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    secret: bytes
    # Connections following jobs in this process (api/followers.py).
    followers: Followers = field(default_factory=Followers)

    @property
    def history(self) -> History:
        """The history repository over this app's database."""
        return History(self.sessionmaker)


# The dependencies are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency in a worker thread, two thread hand-offs per request for an attribute read
# (bench/polling_capacity.py measured the difference).
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.bookchat
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_history(state: StateDep) -> History:
    return state.history


HistoryDep = Annotated[History, Depends(get_history)]


async def session_token(
    x_session_token: Annotated[
        str | None,
        Header(description="The session token (never in a URL: URLs end up in logs)"),
    ] = None,
) -> str | None:
    return x_session_token


SessionTokenDep = Annotated[str | None, Depends(session_token)]


def new_session_token(state: AppState, session_id: str, issued_at: float | None = None) -> str:
    """A fresh session token (each accepted question gets one: the expiry slides)."""
    ttl_s = state.settings.session_token_ttl_s
    return issue_session_token(state.secret, session_id, ttl_s=ttl_s, now=issued_at)


def stream_token(state: AppState, job_id: str, created_at: float | None = None) -> str:
    """The token `status_url`/`events_url` carry: reads this job only, expires with it."""
    created = time.time() if created_at is None else created_at
    return issue_stream_token(state.secret, job_id, expires_at=created + state.jobs.ttl_s)


async def session_of(state: AppState, token: str | None) -> str | None:
    """The session a token opens: signed by us, a session token, not expired, not revoked."""
    claims = read_session_token(state.secret, token)
    if claims is None:
        return None
    revoked = await session_revoked_at(state.redis, claims.session_id)
    if revoked is not None and claims.issued_at <= revoked:
        return None
    return claims.session_id


def _forbidden() -> ApiError:
    return ApiError(403, ErrorCode.FORBIDDEN, "A valid session token is required to read this.")


async def check_session_access(state: AppState, session_id: str | None, token: str | None) -> None:
    """Refuse unless the caller holds this session's token (same answer for unknown and
    foreign sessions, and for expired or revoked tokens, so ids cannot be probed)."""
    if session_id is None or await session_of(state, token) != session_id:
        raise _forbidden()


async def require_session(state: AppState, token: str | None) -> str:
    """The session the caller's token opens; the 403 of `check_session_access` without a valid
    token. For a route whose path names something of a session (a message) rather than the
    session: checked before looking the thing up, so the answer cannot tell whether it exists."""
    session_id = await session_of(state, token)
    if session_id is None:
        raise _forbidden()
    return session_id


def check_admin(state: AppState, authorization: str | None) -> None:
    """Refuse (401) unless `Authorization: Bearer <BOOKCHAT_ADMIN_TOKEN>`; with no admin token
    configured, every admin request is refused."""
    expected = state.settings.admin_token
    scheme, _, supplied = (authorization or "").partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(supplied.encode(), expected.get_secret_value().encode())
    ):
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "An admin token is required (Authorization: Bearer <BOOKCHAT_ADMIN_TOKEN>).",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def admin_access(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    check_admin(state, authorization)


#: A route that lists this in its signature answers 401 to anyone without the admin token.
AdminDep = Annotated[None, Depends(admin_access)]
