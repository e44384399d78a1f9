"""Admission: the one sequence that turns validated submissions (a job, or a batch of them) into
committed, published jobs.

1. Screen in one Redis round trip (api/screening.py): queue depth, the key's rate limits, and
   the outbox marks of the new jobs' ids (chosen here, before any row exists).
2. One transaction: the INSERTs, then the budget hold as the last statement before COMMIT
   (shared/repositories/budgets.py), so no lock is held longer than that statement and the
   commit. An Idempotency-Key repeat finds its first job through the unique index instead.
3. Push the messages (the outbox order: the rows are durable before any worker hears of them).

Whatever refuses or fails after step 1 drops the marks again (the sweeper would otherwise trust
marks of jobs that never existed until they age out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from api import screening
from api.auth import CallerKey
from api.request_scope import db
from shared import outbox
from shared.db import retry_if_stale
from shared.errors import IdempotencyConflictError
from shared.logging import get_logger
from shared.models import Batch, Job
from shared.repositories.batches import create_batch
from shared.repositories.budgets import refusal, reserve
from shared.repositories.jobs import find_by_idempotency_key, insert_job

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


def _admit(
    key: CallerKey, jobs: Sequence[NewJob], insert: Callable[[Session], T | _Replay]
) -> T | _Replay:
    ids = [job.id for job in jobs]
    screening.screen(key, sum(job.tokens for job in jobs), ids)
    session = db()
    try:
        written = retry_if_stale(session, lambda: insert(session))
        if isinstance(written, _Replay):
            session.rollback()
            outbox.forget(ids)
            return written
        amount = sum((job.reserved_usd for job in jobs), Decimal(0))
        if not reserve(session, key.user_id, amount):
            session.rollback()
            raise refusal(session, key.user_id, amount)
        session.commit()
    except BaseException:
        session.rollback()
        _forget_marks(ids)
        raise
    outbox.push([(job.id, job.values["priority"]) for job in jobs])
    return written


def _forget_marks(ids: list[str]) -> None:
    try:
        outbox.forget(ids)
    except Exception:
        # Redis is away too; unmatched marks age out (outbox.MARK_MAX_AGE_S).
        log.warning("admission.unmark_failed", jobs=len(ids))


def admit_job(key: CallerKey, job: NewJob, idempotency: Idempotency | None) -> tuple[Job, bool]:
    """The admitted job, and whether it is new (False: the first job of a repeated
    Idempotency-Key, returned as it is now)."""

    def insert(session: Session) -> Job | _Replay:
        values = {**job.values, "user_id": key.user_id}
        if idempotency is not None:
            values |= {"idempotency_key": idempotency.key, "request_hash": idempotency.request_hash}
        inserted = insert_job(session, values)
        if inserted is not None:
            return inserted
        assert idempotency is not None  # only the idempotency index can refuse the row
        earlier = find_by_idempotency_key(session, key.user_id, idempotency.key)
        assert earlier is not None  # the conflicting row is committed: ON CONFLICT waited
        if earlier.request_hash != idempotency.request_hash:
            raise IdempotencyConflictError(
                f"{IDEMPOTENCY_HEADER} {idempotency.key!r} was already used for job "
                f"{earlier.id} with a different request body; use a new key for new work.",
                details={"job_id": str(earlier.id)},
            )
        return _Replay(earlier)

    written = _admit(key, [job], insert)
    if isinstance(written, _Replay):
        return written.job, False
    log.info("job.accepted", job_id=job.id, user_id=str(key.user_id), model=written.model)
    return written, True


def admit_batch(key: CallerKey, jobs: Sequence[NewJob], meta: dict[str, Any]) -> Batch:
    """The admitted batch: all of `jobs` or, on any refusal, none."""

    def insert(session: Session) -> Batch:
        return create_batch(
            session, user_id=key.user_id, meta=meta, jobs=[job.values for job in jobs]
        )

    batch = _admit(key, jobs, insert)
    assert isinstance(batch, Batch)
    log.info("batch.accepted", batch_id=str(batch.id), user_id=str(key.user_id), jobs=len(jobs))
    return batch
