"""The beat schedule: every entry on its queue with an `expires`; the cron comes from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.schedules import crontab

from shared.queues import TASK_QUEUES, QueueName, TaskName
from shared.settings import Settings
from worker.schedule import REINDEX_EXPIRES_S, beat_schedule, parse_cron

pytestmark = pytest.mark.unit


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, site_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def test_every_entry_has_a_queue_and_expires(tmp_path: Path) -> None:
    schedule = beat_schedule(make_settings(tmp_path))
    assert set(schedule) == {"cleanup-stale-jobs", "reindex-site-nightly"}
    for entry in schedule.values():
        task = TaskName(entry["task"])
        assert entry["options"]["queue"] == str(TASK_QUEUES[task])
        assert entry["options"]["expires"] > 0


def test_nightly_reindex_uses_the_cron_from_settings(tmp_path: Path) -> None:
    entry = beat_schedule(make_settings(tmp_path, reindex_cron="30 2 * * 1-5"))[
        "reindex-site-nightly"
    ]
    assert entry["task"] == TaskName.SCHEDULED_INGEST
    assert entry["options"] == {"queue": QueueName.INGEST, "expires": REINDEX_EXPIRES_S}
    cron = entry["schedule"]
    assert isinstance(cron, crontab)
    assert cron == crontab(minute="30", hour="2", day_of_week="1-5")


def test_cleanup_runs_on_the_chat_queue_every_interval(tmp_path: Path) -> None:
    entry = beat_schedule(make_settings(tmp_path, cleanup_interval_s=120))["cleanup-stale-jobs"]
    assert entry["task"] == TaskName.CLEANUP
    assert entry["schedule"] == 120.0
    # An hours-long ingestion must not hold back the detection of dead workers.
    assert entry["options"] == {"queue": QueueName.CHAT, "expires": 120}


def test_no_reindex_without_a_site_or_with_an_empty_cron(tmp_path: Path) -> None:
    assert "reindex-site-nightly" not in beat_schedule(Settings(data_dir=tmp_path))
    assert "reindex-site-nightly" not in beat_schedule(make_settings(tmp_path, reindex_cron=""))


@pytest.mark.parametrize("expression", ["0 3 * *", "61 3 * * *", "every night", "0 25 * * *"])
def test_bad_cron_is_refused_with_the_setting_name(expression: str) -> None:
    with pytest.raises(ValueError, match="BOOKCHAT_REINDEX_CRON"):
        parse_cron(expression)


def test_worker_app_carries_the_schedule_and_reliability_settings() -> None:
    from worker.celery_app import app

    conf = app.conf
    assert "cleanup-stale-jobs" in conf.beat_schedule
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss
    assert conf.task_time_limit
    assert conf.task_soft_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > 6 * 3600


def test_task_events_are_opt_in(tmp_path: Path) -> None:
    """Flower's feed costs the worker a message per task state: off unless asked (a running
    Flower switches it on itself; `-E` too)."""
    from worker.celery_app import celery_config

    off = celery_config(make_settings(tmp_path))
    assert not off["worker_send_task_events"]
    assert not off["task_send_sent_event"]
    on = celery_config(make_settings(tmp_path, celery_task_events=True))
    assert on["worker_send_task_events"]
    assert on["task_send_sent_event"]


def test_history_retention_runs_daily_only_when_set(tmp_path: Path) -> None:
    assert "history-retention-daily" not in beat_schedule(make_settings(tmp_path))
    entry = beat_schedule(make_settings(tmp_path, history_retention_days=90))[
        "history-retention-daily"
    ]
    assert entry["task"] == TaskName.HISTORY_RETENTION
    assert entry["options"] == {"queue": QueueName.CHAT, "expires": REINDEX_EXPIRES_S}
    assert entry["schedule"] == crontab(minute="30", hour="4")


def test_a_site_from_git_alone_gets_the_nightly_reindex() -> None:
    from pydantic import SecretStr

    settings = Settings(site_repo=SecretStr("https://github.com/acme/site.git"))
    assert settings.site_dir is None
    assert "reindex-site-nightly" in beat_schedule(settings)
