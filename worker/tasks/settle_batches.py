"""settle_batches (Celery beat): give batches whose jobs are all final their final status, and
expire batches past their completion window, each with its webhook event in the same
transaction (the outbox of shared/repositories/webhook_messages.py).

The per-job final write never looks at batches (it is the benchmarked hot path); this beat
settles a batch within about BATCH_SETTLE_INTERVAL_S of its last job ending. The batch rows are
taken FOR UPDATE SKIP LOCKED, so two beats, or a beat and a cancel, never settle one twice."""

from __future__ import annotations

from shared import job_announcements, outbox
from shared.db import transaction
from shared.logging import get_logger
from shared.queueing import SETTLE_BATCHES_TASK
from shared.repositories.batches import expire_overdue, settle_finished
from shared.settings import get_settings
from worker.celery_app import app

log = get_logger(__name__)
# Batches settled per transaction: the next beat takes the rest.
BATCH = 500


@app.task(name=SETTLE_BATCHES_TASK, ignore_result=True)
def settle_batches() -> None:
    base_url = get_settings().public_base_url
    # Settling first: a batch whose last job ended before its deadline completes rather than
    # expiring because the beat came late.
    with transaction() as session:
        settled = settle_finished(session, base_url, BATCH)
    outbox.publish_webhooks(settled.webhooks)
    with transaction() as session:
        expired = expire_overdue(session, base_url, BATCH)
    job_announcements.announce(expired.cancelled_jobs)
    outbox.publish_webhooks(expired.webhooks)
    if expired.batches or settled.batches:
        log.info(
            "batches.settled",
            expired=len(expired.batches),
            jobs_cancelled=len(expired.cancelled_jobs),
            settled=len(settled.batches),
        )
