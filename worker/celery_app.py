"""The Celery app: queues in priority order, late acks, prefetch from settings.

Run with `celery -A worker.celery_app worker -Q jobs.high,jobs.normal,jobs.low --pool threads`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging
from kombu import Queue

from shared.logging import configure_logging
from shared.queueing import JOB_QUEUE_ORDER, broker_transport_options
from shared.settings import Settings, get_settings


def create_celery(settings: Settings | None = None) -> Celery:
    """Build the worker's Celery app from settings."""
    settings = settings or get_settings()
    celery = Celery("promptq", broker=settings.redis_url, include=["worker.tasks.run_job"])
    celery.conf.update(
        task_queues=[Queue(name, routing_key=name) for name in JOB_QUEUE_ORDER],
        task_default_queue="jobs.normal",
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        # Ack after the task ran, so a killed worker's job is redelivered, not lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.worker_prefetch_multiplier,
        worker_concurrency=settings.worker_concurrency,
        # Results live in Postgres; the Celery result backend is never read.
        task_ignore_result=True,
        # Flower shows task events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    return celery


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


app = create_celery()
