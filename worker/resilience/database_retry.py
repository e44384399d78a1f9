"""Ride out a PostgreSQL blip inside a task: a unit of work that failed because the connection
failed is run again, with capped, jittered backoff, until a deadline (for a job, the moment its
lease may have expired). A worker that holds a provider's answer keeps it in hand through a
restart instead of dying and leaving the job to be called again.

Each retry runs the whole unit again in a new transaction, so the unit must be safe to repeat:
every worker write is fenced by the lease token, and a unit whose COMMIT reached the server
before the connection dropped finds, on its retry, that there is nothing left to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from shared.logging import get_logger
from shared.outages import is_database_outage
from worker.resilience.backoff import compute_backoff

T = TypeVar("T")
log = get_logger(__name__)

_BASE_S = 0.1
_CAP_S = 2.0


def through_outage(
    operation: Callable[[], T],
    *,
    deadline: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`operation()`, retried while it fails with a database outage and `deadline` (a
    `clock()` time) has not passed; any other error, or an outage at the deadline, is raised."""
    failures = 0
    while True:
        try:
            return operation()
        except Exception as exc:
            remaining = deadline - clock()
            if not is_database_outage(exc) or remaining <= 0:
                raise
            failures += 1
            log.warning("db.outage_retry", what=what, failures=failures, error=repr(exc))
            sleep(min(remaining, compute_backoff(failures, base=_BASE_S, cap=_CAP_S)))
