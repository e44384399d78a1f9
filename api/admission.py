"""Admission: the one sequence that turns validated submissions (a job, or a batch of them) into
committed jobs, dispatched at once when the broker's window has room.

1. Screen in one Redis round trip (api/screening.py): queue depth, the key's rate limits, and
   the window the live workers offer.
2. One transaction: the INSERTs and the budget hold (the user's, and a team member's team's
   with it), the hold last before COMMIT (shared/repositories/budgets.py), so no lock is held
   longer than that statement and the commit. A single job is one statement (the holds, the
   INSERT from them, and whether it is dispatched now: shared/repositories/job_dispatch.py):
   BEGIN, that, COMMIT. An Idempotency-Key repeat finds its first job through the unique index
   instead.
3. Publish what was dispatched (the outbox order: the rows are durable before any worker hears
   of them). A batch fills the window in fair order after its commit, in one statement; what
   does not fit waits in PostgreSQL for the workers' dispatchers (worker/dispatcher.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from api import metrics, screening
from api.auth import CallerKey
from api.request_scope import db
from shared import outbox
from shared.backlog_gauge import add_to_backlog
from shared.db import retry_if_stale
from shared.dispatch_window import UNBOUNDED
from shared.errors import IdempotencyConflictError
from shared.logging import get_logger
from shared.models import Batch, BatchOrigin, Job
from shared.redis_client import get_redis
from shared.repositories.batches import create_batch
from shared.repositories.budgets import refusal, reserve
from shared.repositories.job_dispatch import dispatch_batch, dispatch_next
from shared.repositories.jobs import find_by_idempotency_key, insert_held_job

T = TypeVar("T")
IDEMPOTENCY_HEADER = "Idempotency-Key"
log = get_logger(__name__)


@dataclass(frozen=True)
class NewJob:
    """One job to admit: its column values (with its id), estimated tokens, worst-case cost."""

    values: dict[str, Any]
    tokens: int
    reserved_usd: Decimal

    @property
    def id(self) -> str:
        return str(self.values["id"])


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


@dataclass(frozen=True)
class _Replay:
    job: Job


class _Refused:
    """The budget hold did not fit."""


def _admit(
    key: CallerKey,
    jobs: Sequence[NewJob],
    write: Callable[[Session, Decimal, int], T | _Replay | _Refused],
) -> tuple[T | _Replay, int]:
    """Screen, then `write(session, amount, window)`: the rows and the hold of `amount` in one
    transaction, the hold last; commit, or roll back. What was written, and the window."""
    screened = screening.screen(key, sum(job.tokens for job in jobs), len(jobs))
    amount = sum((job.reserved_usd for job in jobs), Decimal(0))
    session = db()
    try:
        written = retry_if_stale(session, lambda: write(session, amount, screened.window))
        if isinstance(written, _Replay):
            session.rollback()
            return written, screened.window
        if isinstance(written, _Refused):
            session.rollback()
            raise refusal(session, key.user_id, amount)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return written, screened.window


def _fill_window(window: int, batch: Batch) -> None:
    """After a batch's commit: dispatch in fair order what the window has room for (this
    batch's jobs or others'), or, with the window off, the whole batch; and publish it. A
    failure leaves the jobs to the workers' dispatchers: they are committed."""
    session = db()
    try:
        if window >= UNBOUNDED:
            dispatched = dispatch_batch(session, batch.id)
        else:
            dispatched = dispatch_next(session, window)
        session.commit()
    except Exception:
        session.rollback()
        log.warning("admission.dispatch_failed", exc_info=True)
        dispatched = []
    outbox.publish(dispatched)
    add_to_backlog(get_redis(), -len(dispatched))


def _count_admitted(jobs: Sequence[NewJob], source: str) -> None:
    for priority, count in Counter(job.values["priority"] for job in jobs).items():
        metrics.jobs_admitted.labels(priority, source).inc(count)


def admit_job(key: CallerKey, job: NewJob, idempotency: Idempotency | None) -> tuple[Job, bool]:
    """The admitted job, and whether it is new (False: the first job of a repeated
    Idempotency-Key, returned as it is now). One statement writes the row and its hold."""

    def write(session: Session, amount: Decimal, window: int) -> Job | _Replay | _Refused:
        values = {**job.values, "user_id": key.user_id}
        if idempotency is not None:
            values |= {"idempotency_key": idempotency.key, "request_hash": idempotency.request_hash}
        inserted = insert_held_job(session, values, amount, window)
        if inserted is not None:
            return inserted
        # No row: the key was used before (ON CONFLICT waited for that transaction), or the
        # hold did not fit. A repeat returns its first job whatever the budget says now.
        if idempotency is None:
            return _Refused()
        earlier = find_by_idempotency_key(session, key.user_id, idempotency.key)
        if earlier is None:
            return _Refused()
        if earlier.request_hash != idempotency.request_hash:
            raise IdempotencyConflictError(
                f"{IDEMPOTENCY_HEADER} {idempotency.key!r} was already used for job "
                f"{earlier.id} with a different request body; use a new key for new work.",
                details={"job_id": str(earlier.id)},
            )
        return _Replay(earlier)

    written, _ = _admit(key, [job], write)
    if isinstance(written, _Replay):
        return written.job, False
    if written.dispatched_at is not None:
        outbox.publish([(job.id, written.priority)])
    _count_admitted([job], "job")
    log.info("job.accepted", job_id=job.id, user_id=str(key.user_id), model=written.model)
    return written, True


def admit_batch(
    key: CallerKey,
    jobs: Sequence[NewJob],
    meta: dict[str, Any],
    window_s: int,
    also: Callable[[Session, Batch], object] | None = None,
    origin: BatchOrigin = BatchOrigin.PROMPTQ,
) -> Batch:
    """The admitted batch, expiring `window_s` from now and created through the API `origin`:
    all of `jobs` or, on any refusal, none. `also` writes rows that belong with the batch (a
    compatible surface's view of it) in the same transaction, so neither is ever committed
    without the other."""

    def write(session: Session, amount: Decimal, _: int) -> Batch | _Refused:
        batch = create_batch(
            session,
            user_id=key.user_id,
            meta=meta,
            jobs=[job.values for job in jobs],
            window_s=window_s,
            origin=origin,
        )
        if also is not None:
            also(session, batch)
        return batch if reserve(session, key.user_id, amount, batch.team_id) else _Refused()

    batch, window = _admit(key, jobs, write)
    assert isinstance(batch, Batch)
    _fill_window(window, batch)
    _count_admitted(jobs, "batch")
    log.info("batch.accepted", batch_id=str(batch.id), user_id=str(key.user_id), jobs=len(jobs))
    return batch
