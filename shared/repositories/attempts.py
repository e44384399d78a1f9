"""Attempts and the usage they bill, written in the job's final transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import JobAttempt, UsageRecord


@dataclass(frozen=True)
class AttemptRecord:
    provider: str
    model: str
    outcome: str
    error_code: str | None
    error_message: str | None
    latency_ms: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    started_at: datetime
    finished_at: datetime
    backoff_ms: int = 0
    cached: bool = False

    @property
    def billed(self) -> bool:
        # A cache hit reports the original tokens but costs nothing and is not charged.
        return not self.cached and (self.input_tokens > 0 or self.output_tokens > 0)


def record_attempt(
    session: Session, *, job_id: uuid.UUID, user_id: uuid.UUID, attempt: AttemptRecord
) -> JobAttempt:
    """Add the attempt row and, if the provider billed it, its usage row."""
    number = (
        session.scalar(
            select(func.coalesce(func.max(JobAttempt.number), 0)).where(JobAttempt.job_id == job_id)
        )
        + 1
    )
    row = JobAttempt(
        job_id=job_id,
        number=number,
        provider=attempt.provider,
        model=attempt.model,
        outcome=attempt.outcome,
        error_code=attempt.error_code,
        error_message=(attempt.error_message or "")[:2000] or None,
        latency_ms=attempt.latency_ms,
        input_tokens=attempt.input_tokens,
        output_tokens=attempt.output_tokens,
        cost_usd=attempt.cost_usd,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        backoff_ms=attempt.backoff_ms,
        cached=attempt.cached,
    )
    session.add(row)
    session.flush()
    if attempt.billed:
        session.add(
            UsageRecord(
                user_id=user_id,
                job_id=job_id,
                attempt_id=row.id,
                provider=attempt.provider,
                model=attempt.model,
                input_tokens=attempt.input_tokens,
                output_tokens=attempt.output_tokens,
                cost_usd=attempt.cost_usd,
            )
        )
        session.flush()
    return row
