"""deliver_webhook: one attempt of one message, with no database connection held while the
receiver answers; and dispatch_webhooks (Celery beat): publish the attempts that are due and
hand back deliveries whose worker vanished."""

from __future__ import annotations

import time

import structlog

from shared import outbox
from shared.broker_epoch import broker_lost
from shared.db import transaction
from shared.logging import get_logger
from shared.queueing import DELIVER_WEBHOOK_TASK, DISPATCH_WEBHOOKS_TASK, WEBHOOK_QUEUE
from shared.redis_client import get_redis
from shared.repositories.webhook_attempt_results import record_attempt_result
from shared.repositories.webhook_delivery_leases import (
    ClaimedAttempt,
    claim_attempt,
    expire_deliveries,
)
from shared.repositories.webhook_dispatch import due_messages
from shared.settings import Settings, get_settings
from shared.ssrf import TargetPolicy
from shared.webhook_retry_policy import RetryPolicy
from worker import metrics
from worker.celery_app import app
from worker.delivery.webhook import deliver

log = get_logger(__name__)
DISPATCH_BATCH = 1000


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        schedule_s=settings.webhook_schedule_s,
        jitter=settings.webhook_jitter,
        disable_after_s=settings.webhook_disable_after_s,
    )


@app.task(name=DELIVER_WEBHOOK_TASK)
def deliver_webhook(message_id: str, attempts: int) -> None:
    """Make attempt `attempts + 1` of the message. A duplicate or stale task finds nothing to
    claim; a worker killed mid-attempt leaves a lease that the dispatcher expires, and the
    message is sent again (receivers dedupe on webhook-id)."""
    settings = get_settings()
    with transaction() as session:
        claim = claim_attempt(session, message_id, attempts, settings.webhook_lease_s)
    if claim is None:
        log.info("webhook.skip_not_claimable", message_id=message_id, attempts=attempts)
        return
    structlog.contextvars.bind_contextvars(request_id=claim.request_id, message_id=message_id)
    try:
        _attempt(claim, settings)
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "message_id")


def _attempt(claim: ClaimedAttempt, settings: Settings) -> None:
    report = deliver(claim, TargetPolicy.from_settings(settings), settings.webhook_timeout_s)
    with transaction() as session:
        status = record_attempt_result(session, claim, report, retry_policy(settings))
    outcome = "delivered" if report.succeeded else (report.error_code or "failed")
    metrics.webhook_deliveries.labels(outcome).inc()
    metrics.webhook_delivery_duration.labels(outcome).observe(report.latency_ms / 1000)
    log.info(
        "webhook.attempt",
        attempt=claim.number,
        status_code=report.status_code,
        error_code=report.error_code,
        latency_ms=report.latency_ms,
        # None: the lease ran out meanwhile and another worker has the message.
        message_status=status or "handed_on",
    )


@app.task(name=DISPATCH_WEBHOOKS_TASK, ignore_result=True)
def dispatch_webhooks() -> None:
    settings = get_settings()
    with transaction() as session:
        handed_back = expire_deliveries(session)
    # After Redis lost its data, every delivery published before its present data began and
    # not yet started is gone with it.
    lost_at = broker_lost(get_redis(), "webhooks")
    redispatch_s = settings.webhook_redispatch_s
    if lost_at is not None:
        redispatch_s = max(0.0, min(redispatch_s, time.time() - lost_at.timestamp()))
    # Read before the messages, so a delivery pushed meanwhile cannot make an older one look
    # taken while it still waits.
    oldest_waiting = outbox.oldest_waiting(WEBHOOK_QUEUE)
    with transaction() as session:
        due = due_messages(
            session,
            redispatch_s,
            DISPATCH_BATCH,
            # A delivery held by a live worker but not started waits at most about one attempt.
            orphan_grace_s=settings.webhook_lease_s,
            oldest_waiting=oldest_waiting,
        )
    outbox.publish_webhooks(due)
    metrics.dispatcher_actions.labels("handed_back").inc(handed_back)
    metrics.dispatcher_actions.labels("published").inc(len(due))
    if handed_back or due:
        log.info("webhook.dispatch", handed_back=handed_back, published=len(due))
