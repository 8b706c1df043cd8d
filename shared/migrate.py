"""Run the Alembic migrations that ship inside the package (`bookchat migrate`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "upgrade_database"]

_SCRIPTS = Path(__file__).parent / "migrations"


@contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's INFO lines (a "setup plugin" line per plugin when it is first imported,
    "Context impl", each step) are noise on every start of `bookchat dev` or a worker: shown
    only when the log level is DEBUG."""
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        alembic_log.setLevel(level)


def alembic_config(database_url: str | None = None) -> Config:
    with _alembic_quiet():
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the history tables up to `revision`. Safe to run on every start."""
    with _alembic_quiet():
        from alembic import command

        command.upgrade(alembic_config(database_url), revision)
