"""The async database engine (asyncpg for Postgres, aiosqlite for the embedded default).

Managed Postgres (Neon, and hosts like it) works by configuration alone: paste the provider's
connection string as DATABASE_URL. libpq's parameters, which asyncpg does not take, are
translated (`sslmode` -> `ssl`, `options=-c k=v` -> server settings, `connect_timeout` ->
`timeout`; `channel_binding` is dropped: asyncpg negotiates SCRAM itself). Behind PgBouncer in
transaction mode (Neon's `-pooler` host) the prepared-statement caches are turned off. A
connection refused while a suspended compute wakes up is retried with a bounded backoff.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from shared.settings import Settings

__all__ = [
    "DatabaseTarget",
    "make_engine",
    "make_sessionmaker",
    "normalise_database_url",
    "parse_database_url",
]

log = logging.getLogger(__name__)

#: Seconds a caller waits for the embedded SQLite database's one connection of its process.
SQLITE_POOL_TIMEOUT_S = 120.0

#: libpq parameters asyncpg would reject and that carry nothing it needs.
_DROPPED = {"channel_binding", "gssencmode", "target_session_attrs"}


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A database URL for SQLAlchemy plus the asyncpg arguments the URL cannot carry."""

    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    pooled: bool = False  # behind PgBouncer in transaction mode

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def _options(value: str) -> dict[str, str]:
    """libpq `options` (`-c key=value`, `--key=value`) as asyncpg server settings. Neon's
    `endpoint=<id>` is dropped: it stands in for SNI, which asyncpg sends."""
    settings: dict[str, str] = {}
    for token in value.split():
        key, sep, val = token.removeprefix("--").removeprefix("-c").partition("=")
        if sep and key and key != "endpoint":
            settings[key] = val
    return settings


def parse_database_url(url: str, *, pooled: bool | None = None) -> DatabaseTarget:
    """Accept the URLs hosts hand out (`postgres://`, `postgresql://`, libpq parameters) and
    pick async drivers. `pooled` None = PgBouncer when the host name contains `-pooler`."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if not url.startswith("postgresql+asyncpg://"):
        return DatabaseTarget(url=url)

    parts = urlsplit(url)
    query: list[tuple[str, str]] = []
    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("sslmode", "ssl"):
            query.append(("ssl", value))
        elif key == "options":
            server_settings.update(_options(value))
        elif key == "application_name":
            server_settings["application_name"] = value
        elif key == "connect_timeout":
            connect_args["timeout"] = float(value)
        elif key in _DROPPED:
            log.debug("database URL: dropping %s (not used by asyncpg)", key)
        else:
            query.append((key, value))
    if server_settings:
        connect_args["server_settings"] = server_settings
    is_pooled = "-pooler" in (parts.hostname or "") if pooled is None else pooled
    if is_pooled:
        # PgBouncer in transaction mode hands each transaction to any server connection:
        # a statement prepared on one is unknown on the next. No caches, unique names.
        query = [(k, v) for k, v in query if k != "prepared_statement_cache_size"]
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _statement_name
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    return DatabaseTarget(url=clean, connect_args=connect_args, pooled=is_pooled)


def _statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def normalise_database_url(url: str) -> str:
    """The SQLAlchemy URL for a host's connection string (see `parse_database_url`)."""
    return parse_database_url(url).url


def _retryable_connect_error(error: BaseException) -> bool:
    """Errors of a database that is not up yet (a Neon compute waking, a restart)."""
    if isinstance(error, OSError | TimeoutError):  # refused, reset, DNS blip, timeout
        return True
    name = type(error).__name__
    if name in {"CannotConnectNowError", "ConnectionDoesNotExistError"}:
        return True
    text = str(error).lower()
    return "compute" in text and ("start" in text or "connect" in text)


def _retry_connects(engine: AsyncEngine, retries: int, first_delay_s: float) -> None:
    """Retry a refused connection `retries` times, waiting `first_delay_s` doubling between."""

    def sleep(seconds: float) -> None:
        # Inside SQLAlchemy's greenlet bridge: sleep on the event loop, not the thread.
        await_only(asyncio.sleep(seconds))

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        cause = (error.__cause__ or error) if error else None
        log.warning(
            "database not reachable (%s); retrying in %.1f s (%d/%d)",
            type(cause).__name__,
            state.upcoming_sleep,
            state.attempt_number,
            retries,
        )

    retrying = Retrying(
        retry=retry_if_exception(
            lambda e: _retryable_connect_error(e) or _retryable_connect_error(e.__cause__ or e)
        ),
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=first_delay_s, exp_base=2, min=first_delay_s),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return retrying.copy()(dialect.connect, *cargs, **cparams)  # per-call state


def make_engine(
    url: str,
    settings: Settings | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pooled: bool | None = None,
    connect_retries: int | None = None,
    retry_delay_s: float = 0.5,
) -> AsyncEngine:
    """The engine for a database URL. Options not given come from `settings` (`BOOKCHAT_DB_*`),
    which the caller built once (the app's lifespan, the worker runtime, the CLI command); with
    no settings, from those options' defaults (no environment is read here)."""
    options = settings if settings is not None else Settings.model_construct()
    target = parse_database_url(url, pooled=options.db_pooled if pooled is None else pooled)
    if target.is_sqlite:
        Path(target.url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process, its callers queued for it in order. SQLite runs one
        # write at a time anyway; with several connections of one process the writers fought
        # over its lock (busy-waiting), and at 200 answers in flight some waited out the 30 s
        # busy timeout ("database is locked") or the pool's ("QueuePool limit ... reached"),
        # failing answers. Queued on one connection, a history read or write waits its turn:
        # milliseconds each. Only the other processes (the API, `bookchat` commands) contend
        # for the lock, which the busy timeout covers.
        engine = create_async_engine(
            target.url,
            connect_args={"timeout": 30},
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_POOL_TIMEOUT_S,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read history while a worker writes; FKs are off by default.
            # synchronous=NORMAL: in WAL mode a commit no longer waits for an fsync (the WAL is
            # synced at checkpoints); a crash of the process loses nothing, a power cut may lose
            # the last commits, never the database (sqlite.org/pragma.html#pragma_synchronous).
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_async_engine(
        target.url,
        connect_args=target.connect_args,
        pool_size=options.db_pool_size if pool_size is None else pool_size,
        max_overflow=options.db_max_overflow if max_overflow is None else max_overflow,
        pool_pre_ping=True,
    )
    retries = options.db_connect_retries if connect_retries is None else connect_retries
    if retries > 0:
        _retry_connects(engine, retries, retry_delay_s)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
