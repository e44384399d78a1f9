"""Budgets: a user's daily and monthly cost ceilings, held against their spend counters
(shared/models/spend.py): what the UTC day and month have charged plus what is held for
unfinished jobs.

Admission holds a job's worst case with one conditional UPDATE of the user's counter row, the
last statement before COMMIT, so the row is locked only for that statement and the commit: two
concurrent admissions can never both fit into the last dollar, and one user's admissions wait
for each other only that long. Every other write that changes a reservation or bills a call
moves the counters in its own transaction: the worker's settlement, a cancelled queued job, the
sweeper's release of a vanished worker's job.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, Update, case, cast, func, literal, select, update
from sqlalchemy.orm import Session

from shared.errors import BudgetExceededError
from shared.models import Money, SpendCounter, User
from shared.money import usd
from shared.repositories.budget_alerts import Alert, alerts_of, fractions_param, recorded

DAY = timedelta(days=1)
_UTC_NOW = func.timezone("UTC", func.now())
_TODAY = cast(_UTC_NOW, Date)
_THIS_MONTH = cast(func.date_trunc("month", _UTC_NOW), Date)
_DAY_SPENT = case((SpendCounter.day == _TODAY, SpendCounter.day_spent_usd), else_=Decimal(0))
_MONTH_SPENT = case(
    (SpendCounter.month == _THIS_MONTH, SpendCounter.month_spent_usd), else_=Decimal(0)
)


def open_counter(session: Session, user_id: uuid.UUID) -> None:
    """The new user's counters, all at zero."""
    session.add(SpendCounter(user_id=user_id))
    session.flush()


def hold(user_id: uuid.UUID, amount: Decimal) -> Update:
    """The conditional UPDATE that holds `amount` for the user if it fits under both budgets,
    RETURNING the user id (no row: it does not fit). Whatever runs it must be the transaction's
    last statement before COMMIT: the counter row stays locked until the transaction ends."""
    fits = (
        (User.daily_budget_usd.is_(None))
        | (_DAY_SPENT + SpendCounter.held_usd + amount <= User.daily_budget_usd)
    ) & (
        (User.monthly_budget_usd.is_(None))
        | (_MONTH_SPENT + SpendCounter.held_usd + amount <= User.monthly_budget_usd)
    )
    return (
        update(SpendCounter)
        .where(SpendCounter.user_id == user_id, User.id == SpendCounter.user_id, fits)
        .values(held_usd=SpendCounter.held_usd + amount)
        .returning(SpendCounter.user_id)
    )


def reserve(session: Session, user_id: uuid.UUID, amount: Decimal) -> bool:
    """Hold `amount` for the user if it fits under both budgets; False (nothing held) if not."""
    held = session.execute(
        hold(user_id, amount).execution_options(synchronize_session=False)
    ).first()
    return held is not None


def settle(
    session: Session,
    user_id: uuid.UUID,
    *,
    released: Decimal,
    cost: Decimal = Decimal(0),
    alert_fractions: Sequence[Decimal] = (),
) -> list[Alert]:
    """`released` of the user's holds ends and `cost` is billed to today and this month (in the
    transaction that adds the usage rows of that cost). With `alert_fractions`, the same
    statement records each fraction of a budget the cost crossed (budget_alerts.py): the
    alerts newly recorded, for the caller to announce."""
    if not released and not cost:
        return []
    counters = SpendCounter.__table__
    charge = (
        update(counters)
        .where(counters.c.user_id == user_id)
        .values(held_usd=counters.c.held_usd - released, **spent_plus(cost))
    )
    if not cost or not alert_fractions:
        session.execute(charge)
        return []
    settled = charge.returning(
        counters.c.user_id,
        counters.c.day,
        counters.c.day_spent_usd,
        counters.c.month,
        counters.c.month_spent_usd,
    ).cte("settled")
    alerts = recorded(settled, literal(cost, Money))
    rows = session.execute(select(alerts), fractions_param(alert_fractions))
    return alerts_of(rows)


def spent_plus(cost: Decimal | ColumnElement[Decimal]) -> dict[str, ColumnElement[Any]]:
    """The counter columns that bill `cost` to today and this month, starting either afresh
    when the UTC day or month has turned since the counter last moved."""
    return {
        "day_spent_usd": _DAY_SPENT + cost,
        "day": _TODAY,
        "month_spent_usd": _MONTH_SPENT + cost,
        "month": _THIS_MONTH,
    }


def release(session: Session, holds: Iterable[tuple[uuid.UUID, Decimal]]) -> None:
    """End reservations given as (user id, amount), one statement per user."""
    by_user: defaultdict[uuid.UUID, Decimal] = defaultdict(Decimal)
    for user_id, amount in holds:
        by_user[user_id] += amount
    for user_id, amount in sorted(by_user.items()):
        settle(session, user_id, released=amount)


@dataclass(frozen=True)
class _Standing:
    held: Decimal
    day_spent: Decimal
    month_spent: Decimal
    daily_budget: Decimal | None
    monthly_budget: Decimal | None
    now: datetime
    day_start: datetime
    month_start: datetime


def _standing(session: Session, user_id: uuid.UUID) -> _Standing:
    row = session.execute(
        select(
            SpendCounter.held_usd,
            _DAY_SPENT,
            _MONTH_SPENT,
            User.daily_budget_usd,
            User.monthly_budget_usd,
            func.now(),
            func.timezone("UTC", func.date_trunc("day", _UTC_NOW)),
            func.timezone("UTC", func.date_trunc("month", _UTC_NOW)),
        ).where(SpendCounter.user_id == user_id, User.id == SpendCounter.user_id)
    ).one()
    return _Standing(*row)


@dataclass(frozen=True)
class _Period:
    name: str
    budget: Decimal
    spent: Decimal
    resets: datetime

    def remaining(self, wanted: Decimal) -> Decimal:
        return self.budget - self.spent - wanted


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def refusal(session: Session, user_id: uuid.UUID, amount: Decimal) -> BudgetExceededError:
    """Why `reserve` refused `amount`: the period that does not fit, what is spent and held,
    and when the period resets."""
    standing = _standing(session, user_id)
    bounded = [
        _Period(name, budget, spent, resets)
        for name, budget, spent, resets in (
            ("daily", standing.daily_budget, standing.day_spent, standing.day_start + DAY),
            (
                "monthly",
                standing.monthly_budget,
                standing.month_spent,
                _next_month(standing.month_start),
            ),
        )
        if budget is not None
    ]
    # The period that does not fit now; if a hold ended meanwhile and both fit, the tighter.
    period = min(bounded, key=lambda p: p.remaining(standing.held + amount))
    used = period.spent + standing.held
    remaining = max(period.budget - used, Decimal(0))
    return BudgetExceededError(
        f"The {period.name} budget of ${usd(period.budget)} would be exceeded: "
        f"${usd(remaining)} remains (spent and held for unfinished jobs: ${usd(used)}) and "
        f"this request needs up to ${usd(amount)}. The {period.name} budget resets at "
        f"{period.resets.isoformat()}.",
        details={
            "budget": period.name,
            "budget_usd": usd(period.budget),
            "used_usd": usd(used),
            "remaining_usd": usd(remaining),
            "requested_usd": usd(amount),
            "resets_at": period.resets.isoformat(),
        },
        retry_after_s=max(1, math.ceil((period.resets - standing.now).total_seconds())),
    )
