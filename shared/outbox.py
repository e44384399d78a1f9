"""The outbox: publishing committed work to the broker, and finding what was stamped as
published but has no message there any more.

A job or webhook message is committed, stamped `dispatched_at` (a job when fair dispatch takes
it, shared/repositories/job_dispatch.py; a webhook message when it is due) and only then
published, so a crash in between, a failed publish, a worker killed between fetching a message
and claiming its job, or a Redis that lost its data can leave stamped work with no message. The
sweeper (jobs) and the webhook dispatcher find it the same way: messages leave a list oldest
first, so work stamped more than a grace ago and, while messages wait in its list, more than a
margin before the oldest of them, has no message, and is published again. A
duplicate message costs nothing: a claim takes a job (or a delivery) once.

When Redis loses its data they notice at once (shared/broker_epoch.py) and republish what was
stamped before its present data began, without waiting out their margins.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from shared.logging import get_logger
from shared.queueing import JOB_QUEUES, publish_deliveries, publish_jobs
from shared.redis_client import get_redis
from shared.repositories.job_dispatch import dispatched_stamps

# A publisher stalled between its stamp and its push for longer than this may see its job
# published twice; that is all the margin guards.
STALE_MARGIN_S = 5.0
log = get_logger(__name__)


def publish(jobs: Sequence[tuple[str, str]]) -> None:
    """Publish committed, dispatched jobs given as (job_id, priority). A failure is logged, not
    raised: the jobs are safe in PostgreSQL and the sweeper publishes them again."""
    if not jobs:
        return
    try:
        publish_jobs(jobs)
    except Exception:
        log.exception("outbox.publish_failed", jobs=len(jobs))


def oldest_waiting(queue: str) -> str | None:
    """The job or webhook message id of the oldest message still waiting in `queue`; None when
    the queue is empty, "" when that message cannot be read."""
    raw = get_redis().lindex(queue, -1)
    if raw is None:
        return None
    return _first_arg_of(raw) or ""


def oldest_waiting_jobs() -> dict[str, str | None]:
    """Per priority class, oldest_waiting of its queue."""
    return {priority: oldest_waiting(queue) for priority, queue in JOB_QUEUES.items()}


def job_cutoffs(
    session: Session,
    heads: dict[str, str | None],
    now: datetime,
    grace_s: float,
    lost_at: datetime | None,
) -> dict[str, datetime]:
    """Per priority class, the time before which a dispatched job still queued has no message,
    given the queues' oldest messages read before (`heads`, oldest_waiting_jobs): after Redis
    lost its data, `lost_at`, when its present data began (shared/broker_epoch.py); otherwise
    `grace_s` before now, and, while messages wait in the class's queue, before the oldest
    one's stamp too. A class whose oldest message is unreadable or a copy (its job no longer
    queued) has no cutoff this time: the age of what waits behind it is unknown."""
    if lost_at is not None:
        return dict.fromkeys(JOB_QUEUES, min(now, lost_at))
    stamps = dispatched_stamps(session, [h for h in heads.values() if h])
    latest = now - timedelta(seconds=grace_s)
    cutoffs: dict[str, datetime] = {}
    for priority, head in heads.items():
        if head is None:
            cutoffs[priority] = latest
        elif head in stamps:
            cutoffs[priority] = min(latest, stamps[head] - timedelta(seconds=STALE_MARGIN_S))
    return cutoffs


def publish_webhooks(dispatches: Sequence[tuple[str, int]]) -> None:
    """Publish delivery attempts of committed webhook messages. A failure is logged, not raised:
    the messages are pending in Postgres and the dispatcher publishes them once they are due."""
    if not dispatches:
        return
    try:
        publish_deliveries(dispatches)
    except Exception:
        log.exception("outbox.webhook_publish_failed", messages=len(dispatches))


def _first_arg_of(raw: bytes | None) -> str | None:
    """The first argument of the task a raw message in a kombu Redis list carries (a job id,
    or a webhook message id; Celery protocol 2: the body is [args, kwargs, embed],
    base64-encoded by kombu); None if it cannot be read."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
