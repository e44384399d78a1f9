"""The Celery app: queues in priority order, late acks, prefetch from settings.

Jobs: `celery -A worker.celery_app worker -Q promptq.maintenance,jobs.high,jobs.normal,jobs.low`;
webhook deliveries: a separate `celery -A worker.celery_app worker -Q webhooks` (see Procfile).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import (
    celeryd_init,
    setup_logging,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from kombu import Queue

from shared.logging import configure_logging, get_logger
from shared.queueing import (
    DISPATCH_WEBHOOKS_TASK,
    JOB_QUEUE_ORDER,
    MAINTENANCE_QUEUE,
    SETTLE_BATCHES_TASK,
    SWEEP_TASK,
    WEBHOOK_QUEUE,
    WORKER_QUEUES,
    broker_transport_options,
)
from shared.settings import Settings, get_settings
from worker import metrics
from worker.broker_transport import TRANSPORT
from worker.dispatcher import get_dispatcher
from worker.heartbeat import Heartbeat
from worker.lease_keeper import get_lease_keeper

log = get_logger(__name__)


def create_celery(settings: Settings | None = None) -> Celery:
    """Build the worker's Celery app from settings."""
    settings = settings or get_settings()
    # Beat opens its schedule file before any of its signals is sent, and shelve does not make
    # the folder the file goes in.
    Path(settings.beat_schedule_file).parent.mkdir(parents=True, exist_ok=True)
    celery = Celery(
        "promptq",
        broker=settings.redis_url,
        include=[
            "worker.tasks.run_job",
            "worker.tasks.sweep",
            "worker.tasks.settle_batches",
            "worker.tasks.deliver_webhook",
        ],
    )
    celery.conf.update(
        task_queues=[Queue(name, routing_key=name) for name in (*WORKER_QUEUES, WEBHOOK_QUEUE)],
        task_default_queue="jobs.normal",
        broker_transport=TRANSPORT,
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        # Celery's default gives up after 100 reconnection attempts and exits; a worker that
        # outlives a long broker outage is what lets jobs resume by themselves.
        broker_connection_max_retries=None,
        # Ack after the task ran, so a killed worker's job is redelivered, not lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.worker_prefetch_multiplier,
        worker_concurrency=settings.worker_concurrency,
        # Results live in Postgres; the Celery result backend is never read.
        task_ignore_result=True,
        # Task events cost a Redis publish per task state change (a tenth of a worker's CPU per
        # job); off unless asked for. Flower turns them on while it runs (its enable_events),
        # so its task pages work whenever an operator is watching.
        worker_send_task_events=settings.worker_task_events,
        worker_hijack_root_logger=False,
        beat_schedule_filename=settings.beat_schedule_file,
        beat_schedule={
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval_s,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "exchange": "",
                    "routing_key": MAINTENANCE_QUEUE,
                    # A sweep nobody ran in time is superseded by the next one.
                    "expires": settings.sweep_interval_s * 2,
                },
            },
            "settle-batches": {
                "task": SETTLE_BATCHES_TASK,
                "schedule": settings.batch_settle_interval_s,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "exchange": "",
                    "routing_key": MAINTENANCE_QUEUE,
                    "expires": settings.batch_settle_interval_s * 2,
                },
            },
            "dispatch-webhooks": {
                "task": DISPATCH_WEBHOOKS_TASK,
                "schedule": settings.webhook_dispatch_interval_s,
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "exchange": "",
                    "routing_key": MAINTENANCE_QUEUE,
                    "expires": settings.webhook_dispatch_interval_s * 2,
                },
            },
        },
    )
    return celery


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


@celeryd_init.connect
def _json_from_the_first_line(instance: Any = None, **_: Any) -> None:
    """Log as JSON before Celery's start-up checks warn (running as root, for example), and, in
    JSON mode, leave out the text banner: its facts are in the `ready` line and Flower."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if instance is not None and settings.log_json:
        instance.quiet = True


_heartbeats: list[Heartbeat] = []


@worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    """Serve this process's /metrics, and, for a job worker, start its heartbeat (/ready and
    the broker's window) and its dispatcher."""
    settings = get_settings()
    metrics.serve(settings)
    consumed = set(sender.app.amqp.queues.consume_from) if sender is not None else set()
    if consumed & set(JOB_QUEUE_ORDER):
        heartbeat = Heartbeat(settings, sender.hostname, sender.controller.concurrency)
        heartbeat.start()
        _heartbeats.append(heartbeat)
        get_dispatcher().start(sender.controller.concurrency)


@worker_shutting_down.connect
def _bound_the_shutdown(**_: Any) -> None:
    """SIGTERM: running calls get `shutdown_grace_s` to finish; then their jobs go back to the
    queue and the process exits, rather than waiting on a slow provider indefinitely. The
    worker takes no more messages, so it stops dispatching and its slots leave the window."""
    _stop_offering_slots()

    def give_up() -> None:
        get_lease_keeper().release_all()
        log.warning("worker.shutdown_grace_expired")
        os._exit(0)

    timer = threading.Timer(get_settings().shutdown_grace_s, give_up)
    timer.daemon = True
    timer.start()


def _stop_offering_slots() -> None:
    while _heartbeats:
        _heartbeats.pop().stop()
    get_dispatcher().stop()


@worker_shutdown.connect
def _return_unfinished_jobs(**_: Any) -> None:
    _stop_offering_slots()
    get_lease_keeper().release_all()


app = create_celery()
