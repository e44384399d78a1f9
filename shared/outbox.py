"""The outbox's bookkeeping: which queued jobs are known to have a message in the broker.

The job row is committed before its message is published, so a crash in between, a failed
publish or a Redis that lost its data can leave a queued job with no message. Every publish adds
the job to a Redis set and a claim removes it; the sweeper republishes queued jobs that are
missing from the set. Publishing comes first and marking second: a lost mark only causes a
duplicate message, which the claim makes harmless, while a mark without a message would strand
the job. When Redis loses its data the set goes with the messages, so every queued job is
republished.

Webhook messages need no such set: a pending message carries the time by which it must have
been started (next_attempt_at), and the dispatcher publishes it again when that passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.logging import get_logger
from shared.queueing import publish_deliveries, publish_jobs
from shared.redis_client import get_redis

ENQUEUED_KEY = "promptq:enqueued"
log = get_logger(__name__)


def publish(jobs: Sequence[tuple[str, str]]) -> None:
    """Publish committed jobs given as (job_id, priority) and mark them enqueued. A failure is
    logged, not raised: the jobs are safe in Postgres and the sweeper publishes them later."""
    if not jobs:
        return
    try:
        publish_jobs(jobs)
        get_redis().sadd(ENQUEUED_KEY, *(job_id for job_id, _ in jobs))
    except Exception:
        log.exception("outbox.publish_failed", jobs=len(jobs))


def claimed(job_id: uuid.UUID | str) -> None:
    """The job's message was consumed; a later requeue must be published again."""
    forget([job_id])


def forget(job_ids: Sequence[uuid.UUID | str]) -> None:
    """These jobs have no live message (any more): the sweeper may publish them."""
    if job_ids:
        get_redis().srem(ENQUEUED_KEY, *(str(j) for j in job_ids))


def missing(job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Those of `job_ids` with no known message in the broker."""
    if not job_ids:
        return []
    flags = get_redis().smismember(ENQUEUED_KEY, [str(j) for j in job_ids])
    return [job_id for job_id, present in zip(job_ids, flags, strict=True) if not present]


def publish_webhooks(dispatches: Sequence[tuple[str, int]]) -> None:
    """Publish delivery attempts of committed webhook messages. A failure is logged, not raised:
    the messages are pending in Postgres and the dispatcher publishes them once they are due."""
    if not dispatches:
        return
    try:
        publish_deliveries(dispatches)
    except Exception:
        log.exception("outbox.webhook_publish_failed", messages=len(dispatches))
