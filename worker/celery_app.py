"""The Celery application of the workers: queues, routes and reliability settings.

Start a worker per queue so a nightly re-index never delays a reader's answer:
    celery -A worker.celery_app worker -Q chat --concurrency 4
    celery -A worker.celery_app worker -Q ingest --concurrency 1
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from shared.queues import TASK_QUEUES, QueueName
from shared.redis_client import DEFAULT_REDIS_URL
from shared.settings import Settings, get_settings

__all__ = ["app", "make_celery"]


def make_celery(settings: Settings) -> Celery:
    celery = Celery("bookchat", broker=settings.redis_url or DEFAULT_REDIS_URL)
    longest = max(settings.chat_task_time_limit_s, settings.ingest_task_time_limit_s)
    celery.conf.update(
        task_queues=[Queue(str(q)) for q in QueueName],
        task_default_queue=str(QueueName.CHAT),
        task_routes={str(name): {"queue": str(queue)} for name, queue in TASK_QUEUES.items()},
        # Our own job store holds results and state; Celery keeps none.
        task_ignore_result=True,
        # A task is acknowledged only when it ends, and given back if its worker dies, so a
        # killed worker's job is redelivered instead of lost. Handlers are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Redis redelivers unacknowledged tasks after the visibility timeout: keep it above
        # the longest task, or a slow ingestion would run twice.
        broker_transport_options={"visibility_timeout": longest + 600},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        imports=["worker.tasks"],
    )
    return celery


app = make_celery(get_settings())
