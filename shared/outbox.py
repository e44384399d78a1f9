"""The outbox's bookkeeping: which queued jobs are known to have a message in the broker.

The job row is committed before its message is published, so a crash in between, a failed
publish or a Redis that lost its data can leave a queued job with no message. The sweeper finds
those jobs from Postgres and publishes them again; this module tells it which ones to trust.

Every publish first marks its jobs in a Redis sorted set, scored by Redis' own clock, and only
then pushes the messages (admission marks new jobs in its screening round trip, before their
rows are even written, and pushes after the commit). A worker unmarks a job when it receives
the message. Marking first means an unmark can never run before its mark (a mark added after
the worker's unmark would hide the job from the sweeper forever).

A mark the sweeper still sees is trusted only while its message may still be waiting in the
list. Messages leave a list oldest first, so a mark older than the mark of the oldest message
still in its list (or any mark at all, once that list is empty) belongs to a message that was
consumed without an unmark (a worker killed between fetching it and registering it) or was
never pushed (a publish that failed after its mark). Either way the job is published again. A
duplicate message costs nothing: a claim takes a job once, whatever number of messages it has.

When Redis loses its data (a restart without persistence, a flush, a failover) the marks go
with the messages; `broker_lost` notices that at once, so the sweeper and the webhook dispatcher
republish without waiting out their grace periods.

Webhook messages need no marks: a pending message carries the time by which it must have been
started (next_attempt_at), and the dispatcher publishes it again when that passes.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence

from shared.logging import get_logger
from shared.queueing import JOB_QUEUES, WEBHOOK_QUEUE, publish_deliveries, publish_jobs
from shared.redis_client import get_redis

ENQUEUED_KEY = "promptq:enqueued"
EPOCH_KEY = "promptq:epoch:"
# A publisher stalled between its mark and its push for longer than this may see its job
# published twice; that is all the margin guards.
STALE_MARGIN_S = 5.0
MARK_CHUNK = 1000
# Marks left behind by unmarks that failed are dropped after this long (a message still waiting
# then is published once more, which is harmless), so the set never grows without bound.
MARK_MAX_AGE_S = 24 * 3600
log = get_logger(__name__)

_MARK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
return 1
"""


def publish(jobs: Sequence[tuple[str, str]]) -> None:
    """Mark, then publish, committed jobs given as (job_id, priority). A failure is logged, not
    raised: the jobs are safe in Postgres and the sweeper publishes them later."""
    if not jobs:
        return
    ids = [job_id for job_id, _ in jobs]
    try:
        mark = get_redis().register_script(_MARK)
        for start in range(0, len(ids), MARK_CHUNK):
            mark(keys=[ENQUEUED_KEY], args=ids[start : start + MARK_CHUNK])
    except Exception:
        log.exception("outbox.mark_failed", jobs=len(jobs))
        return
    push(jobs)


def push(jobs: Sequence[tuple[str, str]]) -> None:
    """Publish committed jobs already marked (admission marks them in its screening round
    trip). A failure is logged, not raised, and leaves stale marks the sweeper recognises."""
    if not jobs:
        return
    try:
        publish_jobs(jobs)
    except Exception:
        log.exception("outbox.publish_failed", jobs=len(jobs))
        try:
            forget([job_id for job_id, _ in jobs])
        except Exception:
            # Redis is away; the sweeper finds these stale marks by their age.
            log.warning("outbox.unmark_failed", jobs=len(jobs))


def forget(job_ids: Sequence[uuid.UUID | str]) -> None:
    """These jobs have no live message (any more): the sweeper may publish them."""
    if job_ids:
        get_redis().zrem(ENQUEUED_KEY, *(str(j) for j in job_ids))


def unpublished(due: Sequence[tuple[uuid.UUID, str]]) -> list[tuple[uuid.UUID, str]]:
    """Those of `due` (queued jobs as (id, priority)) that no message in the broker will bring
    to a worker: unmarked, or marked before the oldest message still waiting at their priority.
    """
    if not due:
        return []
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    pipe.time()
    pipe.zremrangebyscore(ENQUEUED_KEY, "-inf", f"({time.time() - MARK_MAX_AGE_S}")
    pipe.zmscore(ENQUEUED_KEY, [str(job_id) for job_id, _ in due])
    for queue in JOB_QUEUES.values():
        pipe.lindex(queue, -1)
    now_parts, _, scores, *heads = pipe.execute()
    now = now_parts[0] + now_parts[1] / 1_000_000
    head_ids = {p: _first_arg_of(raw) for p, raw in zip(JOB_QUEUES, heads, strict=True)}
    head_scores = dict(
        zip(
            head_ids,
            redis.zmscore(ENQUEUED_KEY, [h or "-" for h in head_ids.values()]),
            strict=True,
        )
    )
    cutoffs: dict[str, float] = {}
    for priority, raw in zip(JOB_QUEUES, heads, strict=True):
        if raw is None:
            cutoffs[priority] = now - STALE_MARGIN_S
        elif head_scores[priority] is not None:
            cutoffs[priority] = head_scores[priority] - STALE_MARGIN_S
        else:
            # The oldest message has no mark (a copy of a job already received): its age is
            # unknown, so this sweep trusts every mark at this priority.
            cutoffs[priority] = float("-inf")
    return [
        (job_id, priority)
        for (job_id, priority), score in zip(due, scores, strict=True)
        if score is None or score < cutoffs.get(priority, float("-inf"))
    ]


def broker_lost(name: str) -> bool:
    """True the first time `name` asks after Redis lost its data (or on its first ask ever):
    each caller keeps an epoch key that only a restart without persistence, a flush or a
    failover to an empty replica removes."""
    return bool(get_redis().set(EPOCH_KEY + name, uuid.uuid4().hex, nx=True))


def publish_webhooks(dispatches: Sequence[tuple[str, int]]) -> None:
    """Publish delivery attempts of committed webhook messages. A failure is logged, not raised:
    the messages are pending in Postgres and the dispatcher publishes them once they are due."""
    if not dispatches:
        return
    try:
        publish_deliveries(dispatches)
    except Exception:
        log.exception("outbox.webhook_publish_failed", messages=len(dispatches))


def oldest_waiting_delivery() -> str | None:
    """The webhook message id of the oldest delivery still waiting in the broker's queue; None
    when the queue is empty, "" when that delivery cannot be read."""
    raw = get_redis().lindex(WEBHOOK_QUEUE, -1)
    if raw is None:
        return None
    return _first_arg_of(raw) or ""


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
