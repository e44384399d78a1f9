"""Budgets: a user's daily and monthly cost ceilings, checked at admission against what is
already spent (usage) plus what is held for unfinished jobs (reservations).

Admission locks the user's row first, so one user's admissions happen one at a time and two
concurrent jobs can never both fit into the last dollar. Settlement (the worker's final write)
moves a job's charge from its reservation to usage rows in one transaction, so the sum seen here
never counts a job twice or not at all.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import BudgetExceededError, NotFoundError
from shared.models import Job, JobStatus, UsageRecord, User


def lock_user(session: Session, user_id: uuid.UUID) -> User:
    """The user's row, locked until the transaction ends: admissions of one user serialize."""
    user = session.scalars(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if user is None:
        raise NotFoundError(f"No user with id {user_id}.")
    return user


@dataclass(frozen=True)
class _Clock:
    now: datetime
    day_start: datetime
    month_start: datetime

    def next_day(self) -> datetime:
        return self.day_start + timedelta(days=1)

    def next_month(self) -> datetime:
        start = self.month_start
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _clock(session: Session) -> _Clock:
    """Now and the starts of the UTC day and month, by the database's clock (the one that
    stamps usage rows), so every API process agrees on when a day ends."""
    utc_now = func.timezone("UTC", func.now())
    row = session.execute(
        select(
            func.now(),
            func.timezone("UTC", func.date_trunc("day", utc_now)),
            func.timezone("UTC", func.date_trunc("month", utc_now)),
        )
    ).one()
    return _Clock(now=row[0], day_start=row[1], month_start=row[2])


def _open_reservations(session: Session, user_id: uuid.UUID) -> Decimal:
    """Held for the user's unsettled jobs. A job cancelled while running stays held until its
    worker settles it, but not past the worker's lease: a dead worker never settles."""
    return session.scalar(
        select(func.coalesce(func.sum(Job.reserved_usd), 0)).where(
            Job.user_id == user_id,
            Job.reserved_usd > 0,
            or_(Job.status != JobStatus.CANCELLED, Job.lease_expires_at > func.now()),
        )
    )


def _spent(session: Session, user_id: uuid.UUID, clock: _Clock) -> tuple[Decimal, Decimal]:
    """Usage cost since the start of the UTC day and since the start of the UTC month."""
    today, month = session.execute(
        select(
            func.coalesce(
                func.sum(UsageRecord.cost_usd).filter(UsageRecord.created_at >= clock.day_start),
                0,
            ),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        ).where(UsageRecord.user_id == user_id, UsageRecord.created_at >= clock.month_start)
    ).one()
    return today, month


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _refuse(
    period: str, budget: Decimal, used: Decimal, amount: Decimal, resets: datetime, now: datetime
) -> BudgetExceededError:
    remaining = max(budget - used, Decimal(0))
    return BudgetExceededError(
        f"The {period} budget of ${_usd(budget)} would be exceeded: ${_usd(remaining)} remains "
        f"(spent and held for unfinished jobs: ${_usd(used)}) and this request needs up to "
        f"${_usd(amount)}. The {period} budget resets at {resets.isoformat()}.",
        details={
            "budget": period,
            "budget_usd": _usd(budget),
            "used_usd": _usd(used),
            "remaining_usd": _usd(remaining),
            "requested_usd": _usd(amount),
            "resets_at": resets.isoformat(),
        },
        retry_after_s=max(1, math.ceil((resets - now).total_seconds())),
    )


def check_budget(session: Session, user: User, amount: Decimal) -> None:
    """BudgetExceededError if reserving `amount` more would pass the user's daily or monthly
    budget. Call with the user's row locked (lock_user) and insert the reservation before commit.
    """
    if user.daily_budget_usd is None and user.monthly_budget_usd is None:
        return
    clock = _clock(session)
    held = _open_reservations(session, user.id)
    today, month = _spent(session, user.id, clock)
    for period, budget, spent, resets in (
        ("daily", user.daily_budget_usd, today, clock.next_day()),
        ("monthly", user.monthly_budget_usd, month, clock.next_month()),
    ):
        if budget is not None and spent + held + amount > budget:
            raise _refuse(period, budget, spent + held, amount, resets, clock.now)
