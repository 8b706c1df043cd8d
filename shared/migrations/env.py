"""Alembic environment: runs migrations over the async engine from settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from shared import models, site_pages  # noqa: F401  (registers the tables on SQLModel.metadata)
from shared.db import make_engine
from shared.settings import Settings, get_settings

target_metadata = SQLModel.metadata


def _database_url(settings: Settings) -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    return url or settings.effective_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    settings = get_settings()
    engine = make_engine(_database_url(settings), settings)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=_database_url(get_settings()), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
