"""The backlog's size as admission sees it, without counting a million rows per request.

Admission adds every job it admits, in its screening round trip (api/screening.py), before it
knows whether the job goes into the backlog; dispatchers take off the jobs they take from the
backlog; the sweeper writes the true count (queued jobs not dispatched) every sweep. Between
sweeps the gauge therefore runs ahead of the truth by the jobs dispatched at admission (and by
refused or cancelled ones), never behind it for long: the ceiling refuses a little early rather
than late. A failure to update is logged and left to the next sweep: the gauge is advice for
the queue-depth ceiling, never the truth about a job.
"""

from __future__ import annotations

import redis

from shared.logging import get_logger

BACKLOG_KEY = "promptq:backlog"
log = get_logger(__name__)


def set_backlog(client: redis.Redis, depth: int) -> None:
    """Record the backlog counted now."""
    client.set(BACKLOG_KEY, depth)


def add_to_backlog(client: redis.Redis, jobs: int) -> None:
    """`jobs` (negative: taken out) entered the backlog."""
    if not jobs:
        return
    try:
        client.incrby(BACKLOG_KEY, jobs)
    except Exception as exc:
        log.warning("backlog_gauge.update_failed", jobs=jobs, error=repr(exc))
