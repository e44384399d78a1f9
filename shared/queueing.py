"""Priority -> queue name, and publishing a task by name without importing the worker.

Messages go through the anonymous exchange with the queue name as routing key. Kombu's Redis
transport then pushes straight onto the queue's list instead of looking up exchange bindings
stored in Redis, so a publish still reaches its queue after Redis lost every key.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu import Producer

from shared.models.job import Priority
from shared.settings import Settings, get_settings

QUEUE_PREFIX = "jobs"
JOB_QUEUES: dict[str, str] = {p.value: f"{QUEUE_PREFIX}.{p.value}" for p in Priority}
# Consumption order: a worker always takes from the first non-empty queue of this list.
JOB_QUEUE_ORDER: tuple[str, ...] = tuple(JOB_QUEUES[p] for p in ("high", "normal", "low"))
RUN_JOB_TASK = "promptq.run_job"
SWEEP_TASK = "promptq.sweep"
SETTLE_BATCHES_TASK = "promptq.settle_batches"
# Maintenance first, so a backlog of jobs never starves the sweeper.
MAINTENANCE_QUEUE = "promptq.maintenance"
WORKER_QUEUES: tuple[str, ...] = (MAINTENANCE_QUEUE, *JOB_QUEUE_ORDER)
# Webhook deliveries have their own queue and their own workers, so a slow or dead receiver
# never holds a slot a job could use.
WEBHOOK_QUEUE = "webhooks"
DELIVER_WEBHOOK_TASK = "promptq.deliver_webhook"
DISPATCH_WEBHOOKS_TASK = "promptq.dispatch_webhooks"
# Publishes buffered before one pipelined round trip to Redis.
PUBLISH_BATCH_SIZE = 1000


def queue_for(priority: str) -> str:
    """The Celery queue that carries jobs of this priority class."""
    return JOB_QUEUES[Priority(priority).value]


def broker_transport_options(settings: Settings) -> dict[str, object]:
    """Options shared by every producer and consumer of the broker."""
    return {
        # Strict order over the queues listed by the consumer: high, then normal, then low.
        "queue_order_strategy": "priority",
        # Longer than any job can run, or Redis redelivers a task still in flight.
        "visibility_timeout": settings.broker_visibility_timeout_s,
        # Kombu's default pool of 10 starves an I/O pool with acks_late: acks then fail with
        # MaxConnectionsError and tasks run twice after the visibility timeout.
        "max_connections": settings.broker_max_connections,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 25,
    }


def _producer(name: str, transport_options: dict[str, object]) -> Celery:
    app = Celery(name, broker=get_settings().redis_url)
    app.conf.broker_transport_options = transport_options
    app.conf.broker_connection_retry_on_startup = True
    return app


@lru_cache(maxsize=1)
def producer_app() -> Celery:
    """A Celery app used only to publish; the API never imports the worker's app."""
    return _producer("promptq-producer", broker_transport_options(get_settings()))


@lru_cache(maxsize=1)
def bulk_producer_app() -> Celery:
    """producer_app for many messages at once. Kombu pipelines a batch of publishes only when
    the connection does not retry a timed-out command (a replayed pipeline could push twice), so
    this one does not; a failed batch is left to the sweeper, like any failed publish."""
    options = broker_transport_options(get_settings()) | {"retry_on_timeout": False}
    return _producer("promptq-bulk-producer", options)


def _send(
    app: Celery, job_id: str, priority: str, producer: Producer | None = None, **options: Any
) -> None:
    queue = queue_for(priority)
    app.send_task(
        RUN_JOB_TASK,
        args=[job_id],
        queue=queue,
        exchange="",
        routing_key=queue,
        producer=producer,
        retry=True,
        **options,
        retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.5},
    )


def publish_job(job_id: str, priority: str) -> None:
    """Enqueue a run of `job_id`; the job row must already be committed."""
    _send(producer_app(), job_id, priority)


def publish_jobs(jobs: Iterable[tuple[str, str]]) -> None:
    """Enqueue runs of many committed jobs, given as (job_id, priority): one producer
    connection, and the LPUSHes sent in pipelined batches rather than a round trip each."""
    app = bulk_producer_app()
    with app.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH_SIZE):
        for job_id, priority in jobs:
            # No queue declaration per message: the anonymous exchange needs no bindings.
            _send(app, job_id, priority, producer, declare=[])


def publish_deliveries(dispatches: Iterable[tuple[str, int]]) -> None:
    """Enqueue delivery attempts of committed webhook messages, given as (message id, attempts
    already made)."""
    app = producer_app()
    with app.producer_or_acquire() as producer:
        for message_id, attempts in dispatches:
            app.send_task(
                DELIVER_WEBHOOK_TASK,
                args=[message_id, attempts],
                queue=WEBHOOK_QUEUE,
                exchange="",
                routing_key=WEBHOOK_QUEUE,
                producer=producer,
                declare=[],
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.5},
            )
