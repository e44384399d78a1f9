"""Usage totals per UTC day and model, summed by PostgreSQL (exact Numeric arithmetic)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.orm import Session

from shared.models import UsageRecord


@dataclass(frozen=True)
class DailyModelUsage:
    date: date
    model: str
    provider: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def usage_by_day_and_model(
    session: Session, user_id: uuid.UUID, start: date, end: date
) -> list[DailyModelUsage]:
    """The user's billed attempts from `start` to `end` (inclusive UTC days), one row per day,
    model and provider, ordered by day then model."""
    # A literal, not a bind parameter: GROUP BY must repeat the very same expression.
    day = cast(func.timezone(literal_column("'UTC'"), UsageRecord.created_at), Date)
    rows = session.execute(
        select(
            day.label("day"),
            UsageRecord.model,
            UsageRecord.provider,
            func.count().label("requests"),
            func.sum(UsageRecord.input_tokens).label("input_tokens"),
            func.sum(UsageRecord.output_tokens).label("output_tokens"),
            func.sum(UsageRecord.cost_usd).label("cost_usd"),
        )
        .where(
            UsageRecord.user_id == user_id,
            # Bounds on the raw column, so the (user_id, created_at) index serves the range.
            UsageRecord.created_at >= _midnight_utc(start),
            UsageRecord.created_at < _midnight_utc(end + timedelta(days=1)),
        )
        .group_by(day, UsageRecord.model, UsageRecord.provider)
        .order_by(day, UsageRecord.model, UsageRecord.provider)
    )
    return [
        DailyModelUsage(
            date=row.day,
            model=row.model,
            provider=row.provider,
            requests=row.requests,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
        )
        for row in rows
    ]
