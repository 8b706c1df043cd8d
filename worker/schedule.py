"""The beat schedule: every periodic task in one place, each with its queue and `expires`.

`expires` drops a message that no worker started in time (beat was down, the queue was
backed up), so missed runs never pile up and fire all at once later.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from shared.queues import TASK_QUEUES, TaskName
from shared.settings import Settings

__all__ = ["REINDEX_EXPIRES_S", "RETENTION_CRON", "beat_schedule", "parse_cron"]

#: A nightly re-index not started within this long is skipped until the next night.
REINDEX_EXPIRES_S = 3600
#: The daily history retention (BOOKCHAT_HISTORY_RETENTION_DAYS > 0), after the nightly re-index
#: default; a run not started within REINDEX_EXPIRES_S waits for the next day.
RETENTION_CRON = "30 4 * * *"


def parse_cron(expression: str) -> crontab:
    """A 5-field cron expression (minute hour day-of-month month day-of-week), validated."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"BOOKCHAT_REINDEX_CRON must have 5 fields (m h dom mon dow), got {expression!r}"
        )
    try:
        return crontab.from_string(" ".join(fields))
    except ValueError as error:
        raise ValueError(f"BOOKCHAT_REINDEX_CRON {expression!r}: {error}") from error


def _entry(task: TaskName, schedule: Any, expires: float) -> dict[str, Any]:
    return {
        "task": str(task),
        "schedule": schedule,
        "options": {"queue": str(TASK_QUEUES[task]), "expires": expires},
    }


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule = {
        "cleanup-stale-jobs": _entry(
            TaskName.CLEANUP, float(settings.cleanup_interval_s), settings.cleanup_interval_s
        ),
    }
    if settings.reindex_cron.strip() and settings.has_site:
        schedule["reindex-site-nightly"] = _entry(
            TaskName.SCHEDULED_INGEST, parse_cron(settings.reindex_cron), REINDEX_EXPIRES_S
        )
    if settings.history_retention_days > 0:
        schedule["history-retention-daily"] = _entry(
            TaskName.HISTORY_RETENTION, parse_cron(RETENTION_CRON), REINDEX_EXPIRES_S
        )
    return schedule
