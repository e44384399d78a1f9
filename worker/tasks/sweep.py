"""sweep (Celery beat): return jobs whose worker vanished, and publish queued jobs that have no
message (outbox recovery after a crash between commit and publish, or a Redis that lost its
data). Republishing is safe: a claim takes a job once, whatever number of messages it has."""

from __future__ import annotations

import contextlib

from redis.exceptions import LockError

from shared import outbox
from shared.db import transaction
from shared.logging import get_logger
from shared.queueing import SWEEP_TASK
from shared.redis_client import get_redis
from shared.repositories.sweeper import due_queued_jobs, expire_leases
from shared.repositories.webhook_messages import enqueue_job_events
from shared.settings import get_settings
from worker.celery_app import app

log = get_logger(__name__)
LOCK_KEY = "promptq:sweep-lock"
BATCH = 5000


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> None:
    settings = get_settings()
    # One sweep at a time across all workers; the lock expires if its holder dies.
    lock = get_redis().lock(LOCK_KEY, timeout=max(60.0, settings.sweep_interval_s * 6))
    if not lock.acquire(blocking=False):
        return
    try:
        with transaction() as session:
            expired = expire_leases(session, settings.max_deliveries)
            webhooks = enqueue_job_events(session, expired.failed, settings.public_base_url)
        outbox.publish_webhooks(webhooks)
        # A requeued job's old message is long consumed, whatever its mark says (a failed
        # unmark after its claim would otherwise hide it from the republish below).
        outbox.forget(expired.requeued)
        with transaction() as session:
            due = due_queued_jobs(session, settings.requeue_grace_s, BATCH)
        priority = dict(due)
        to_publish = outbox.missing([job_id for job_id, _ in due])
        outbox.publish([(str(job_id), priority[job_id]) for job_id in to_publish])
        if expired.requeued or expired.failed or to_publish:
            log.info(
                "sweep.done",
                leases_expired=len(expired.requeued),
                worker_lost=len(expired.failed),
                republished=len(to_publish),
            )
    finally:
        # A sweep that outlived its lock has nothing left to release.
        with contextlib.suppress(LockError):
            lock.release()
