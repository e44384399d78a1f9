"""Attempts and the usage they bill, written in the job's final transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
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
    similarity: float | None = None

    @property
    def billed(self) -> bool:
        # A cache hit reports the original tokens but costs nothing and is not charged.
        return not self.cached and (self.input_tokens > 0 or self.output_tokens > 0)


def attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    """The attempt's columns other than its id, job and number."""
    return {
        "provider": attempt.provider,
        "model": attempt.model,
        "outcome": attempt.outcome,
        "error_code": attempt.error_code,
        "error_message": (attempt.error_message or "")[:2000] or None,
        "latency_ms": attempt.latency_ms,
        "input_tokens": attempt.input_tokens,
        "output_tokens": attempt.output_tokens,
        "cost_usd": attempt.cost_usd,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "backoff_ms": attempt.backoff_ms,
        "cached": attempt.cached,
        "similarity": attempt.similarity,
    }


def record_attempt(
    session: Session, *, job_id: uuid.UUID, user_id: uuid.UUID, attempt: AttemptRecord
) -> None:
    """Add the attempt row (numbered after the job's last one in the same statement) and, if
    the provider billed it, its usage row."""
    attempt_id = uuid.uuid4()
    number = (
        select(func.coalesce(func.max(JobAttempt.number), 0) + 1)
        .where(JobAttempt.job_id == job_id)
        .scalar_subquery()
    )
    session.execute(
        insert(JobAttempt).values(
            id=attempt_id, job_id=job_id, number=number, **attempt_row(attempt)
        )
    )
    if attempt.billed:
        session.execute(
            insert(UsageRecord).values(
                user_id=user_id,
                job_id=job_id,
                attempt_id=attempt_id,
                provider=attempt.provider,
                model=attempt.model,
                input_tokens=attempt.input_tokens,
                output_tokens=attempt.output_tokens,
                cost_usd=attempt.cost_usd,
            )
        )
