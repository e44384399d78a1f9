"""sweep (Celery beat): return jobs whose worker vanished to the backlog, publish again
dispatched jobs that have no message (a crash between commit and publish, a worker killed
between fetching a message and claiming its job, or a Redis that lost its data; see
shared/outbox.py), count the backlog for admission's queue-depth ceiling, and delete expired
semantic cache entries. Republishing is safe: a claim takes a job once, whatever number of
messages it has."""

from __future__ import annotations

import contextlib

from redis.exceptions import LockError
from sqlalchemy import func, select

from shared import job_announcements, outbox
from shared.backlog_gauge import set_backlog
from shared.broker_epoch import broker_lost
from shared.db import one_statement, transaction
from shared.logging import get_logger
from shared.queueing import SWEEP_TASK
from shared.redis_client import get_redis
from shared.repositories.job_dispatch import backlog_depth, redispatch_lost
from shared.repositories.semantic_cache import purge_expired
from shared.repositories.sweeper import expire_leases
from shared.repositories.webhook_messages import enqueue_job_events
from shared.settings import get_settings
from worker import metrics
from worker.celery_app import app
from worker.dispatcher import get_dispatcher

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
        job_announcements.announce(expired.failed)
        # After Redis lost its data no job dispatched before its present data began has a
        # message: publish those now rather than after the grace period that shields jobs the
        # API is publishing right now.
        lost_at = broker_lost(get_redis(), "sweep")
        # Read before the stamps, so a job dispatched meanwhile cannot make an older one look
        # published while it has no message.
        heads = outbox.oldest_waiting_jobs()
        with transaction() as session:
            now = session.scalar(select(func.now()))
            cutoffs = outbox.job_cutoffs(session, heads, now, settings.requeue_grace_s, lost_at)
            to_publish = redispatch_lost(session, cutoffs, BATCH)
        outbox.publish(to_publish)
        with one_statement() as session:
            depth = backlog_depth(session)
        set_backlog(get_redis(), depth)
        if expired.requeued:
            get_dispatcher().wake()
        metrics.sweeper_actions.labels("lease_expired_requeued").inc(len(expired.requeued))
        metrics.sweeper_actions.labels("failed_worker_lost").inc(len(expired.failed))
        metrics.sweeper_actions.labels("republished").inc(len(to_publish))
        purged = _purge_semantic_cache()
        if expired.requeued or expired.failed or to_publish or purged:
            log.info(
                "sweep.done",
                leases_expired=len(expired.requeued),
                worker_lost=len(expired.failed),
                republished=len(to_publish),
                broker_lost=lost_at is not None,
                semantic_cache_purged=purged,
            )
    finally:
        # A sweep that outlived its lock has nothing left to release.
        with contextlib.suppress(LockError):
            lock.release()


def _purge_semantic_cache() -> int:
    """Expired semantic cache entries deleted; last in the sweep, and never its failure: the
    jobs' recovery above must not wait on, or fail with, a cache's housekeeping."""
    try:
        with one_statement() as session:
            return purge_expired(session, BATCH)
    except Exception:
        log.exception("sweep.semantic_cache_purge_failed")
        return 0
