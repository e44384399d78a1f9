"""Budgets: a user's daily and monthly cost ceilings, and its team's, held against their spend
counters (shared/models/spend.py): what the UTC day and month have charged plus what is held for
unfinished jobs.

Admission holds a job's worst case with one conditional UPDATE of the user's counter row, the
last statement before COMMIT, so the row is locked only for that statement and the commit: two
concurrent admissions can never both fit into the last dollar, and one user's admissions wait
for each other only that long. A team member's hold also updates the team's counter row in the
same statement (a CTE that reads the user's hold), so the job is admitted only if both fit, and
the team's members wait for each other just as long. Every other write that changes a
reservation or bills a call moves the counters in its own transaction: the worker's settlement,
a cancelled queued job, the sweeper's release of a vanished worker's job; the job's `team_id`
(the team that held it) says which team counter moves with the user's.

Locks are always taken user counters first, then team counters, so these writes cannot deadlock
one another.
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

from sqlalchemy import (
    CTE,
    ColumnElement,
    Date,
    Update,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from shared.errors import BudgetExceededError
from shared.models import Money, SpendCounter, Team, TeamSpendCounter, User
from shared.models.spend import SpendColumns
from shared.money import usd
from shared.repositories.budget_alerts import Alert, alerts_of, fractions_param, recorded

DAY = timedelta(days=1)
_UTC_NOW = func.timezone("UTC", func.now())
_TODAY = cast(_UTC_NOW, Date)
_THIS_MONTH = cast(func.date_trunc("month", _UTC_NOW), Date)
Counter = type[SpendColumns]
# (user id, the job's team id or None, amount): a reservation to end.
Hold = tuple[uuid.UUID, uuid.UUID | None, Decimal]


def _day_spent(counter: Counter) -> ColumnElement[Decimal]:
    return case((counter.day == _TODAY, counter.day_spent_usd), else_=Decimal(0))


def _month_spent(counter: Counter) -> ColumnElement[Decimal]:
    return case((counter.month == _THIS_MONTH, counter.month_spent_usd), else_=Decimal(0))


def open_counter(session: Session, user_id: uuid.UUID) -> None:
    """The new user's counters, all at zero."""
    session.add(SpendCounter(user_id=user_id))
    session.flush()


def open_team_counter(session: Session, team_id: uuid.UUID) -> None:
    """The new team's counters, all at zero."""
    session.add(TeamSpendCounter(team_id=team_id))
    session.flush()


def _fits(counter: Counter, owner: type[User] | type[Team], amount: Any) -> ColumnElement[bool]:
    return (
        (owner.daily_budget_usd.is_(None))
        | (_day_spent(counter) + counter.held_usd + amount <= owner.daily_budget_usd)
    ) & (
        (owner.monthly_budget_usd.is_(None))
        | (_month_spent(counter) + counter.held_usd + amount <= owner.monthly_budget_usd)
    )


def hold(user_id: Any, amount: Any) -> Update:
    """The conditional UPDATE that holds `amount` for the user if it fits under both budgets,
    RETURNING the user id and the user's team id (no row: it does not fit). Whatever runs it
    must be the transaction's last statement before COMMIT: the counter row stays locked until
    the transaction ends."""
    return (
        update(SpendCounter)
        .where(
            SpendCounter.user_id == user_id,
            User.id == SpendCounter.user_id,
            _fits(SpendCounter, User, amount),
        )
        .values(held_usd=SpendCounter.held_usd + amount)
        .returning(SpendCounter.user_id, User.team_id)
    )


def team_hold(held: CTE, amount: Any, team_id: Any = None) -> Update:
    """The conditional UPDATE that holds `amount` for a team if it fits under both its budgets,
    only with the user's hold `held` (the CTE of `hold`) and after it: for the team `team_id`,
    by default the user's own (held's team_id, so no row when the user has no team). RETURNING
    the team id (no row: no team, or it does not fit)."""
    if team_id is None:
        which = TeamSpendCounter.team_id == held.c.team_id
    else:
        # EXISTS, evaluated before the scan: the user's row is still locked first.
        which = (TeamSpendCounter.team_id == team_id) & exists(select(held.c.user_id))
    return (
        update(TeamSpendCounter)
        .where(
            which,
            Team.id == TeamSpendCounter.team_id,
            _fits(TeamSpendCounter, Team, amount),
        )
        .values(held_usd=TeamSpendCounter.held_usd + amount)
        .returning(TeamSpendCounter.team_id)
    )


def reserve(
    session: Session, user_id: uuid.UUID, amount: Decimal, team_id: uuid.UUID | None = None
) -> bool:
    """Hold `amount` for the user, and for the team `team_id` if given, if it fits under all
    their budgets (one statement); False if not, and the caller rolls back (part of the hold
    may have been made)."""
    if team_id is None:
        statement = hold(user_id, amount)
    else:
        held = hold(user_id, amount).cte("held")
        statement = team_hold(held, amount, literal(team_id)).add_cte(held)
    held_row = session.execute(statement.execution_options(synchronize_session=False)).first()
    return held_row is not None


def spent_plus(
    cost: Decimal | ColumnElement[Decimal], counter: Counter = SpendCounter
) -> dict[str, ColumnElement[Any]]:
    """The `counter` columns that bill `cost` to today and this month, starting either afresh
    when the UTC day or month has turned since the counter last moved."""
    return {
        "day_spent_usd": _day_spent(counter) + cost,
        "day": _TODAY,
        "month_spent_usd": _month_spent(counter) + cost,
        "month": _THIS_MONTH,
    }


def settle(
    session: Session,
    user_id: uuid.UUID,
    *,
    released: Decimal,
    cost: Decimal = Decimal(0),
    team_id: uuid.UUID | None = None,
    alert_fractions: Sequence[Decimal] = (),
) -> list[Alert]:
    """`released` of the user's holds ends and `cost` is billed to today and this month (in the
    transaction that adds the usage rows of that cost); for the job's team `team_id` too, in
    the same statement. With `alert_fractions`, the same statement records each fraction of a
    user's budget the cost crossed (budget_alerts.py; a team's budget has no alerts): the
    alerts newly recorded, for the caller to announce."""
    if not released and not cost:
        return []
    counters = SpendCounter.__table__
    charge = (
        update(counters)
        .where(counters.c.user_id == user_id)
        .values(held_usd=counters.c.held_usd - released, **spent_plus(cost))
    )
    alerting = bool(cost and alert_fractions)
    if team_id is None and not alerting:
        session.execute(charge)
        return []
    settled = charge.returning(
        counters.c.user_id,
        counters.c.day,
        counters.c.day_spent_usd,
        counters.c.month,
        counters.c.month_spent_usd,
    ).cte("settled")
    team_charge = None
    if team_id is not None:
        team_charge = (
            update(TeamSpendCounter)
            # EXISTS, evaluated before the scan: the user's row is locked first, as everywhere.
            .where(TeamSpendCounter.team_id == team_id, exists(select(settled.c.user_id)))
            .values(
                held_usd=TeamSpendCounter.held_usd - released,
                **spent_plus(cost, TeamSpendCounter),
            )
        )
    if not alerting:
        assert team_charge is not None
        session.execute(team_charge.add_cte(settled).execution_options(synchronize_session=False))
        return []
    statement = select(recorded(settled, literal(cost, Money)))
    if team_charge is not None:
        statement = statement.add_cte(team_charge.cte("team_settled"))
    rows = session.execute(statement, fractions_param(alert_fractions))
    return alerts_of(rows)


def release(session: Session, holds: Iterable[Hold]) -> None:
    """End reservations given as (user id, team id or None, amount): one statement per user,
    then one per team."""
    by_user: defaultdict[uuid.UUID, Decimal] = defaultdict(Decimal)
    by_team: defaultdict[uuid.UUID, Decimal] = defaultdict(Decimal)
    for user_id, team_id, amount in holds:
        by_user[user_id] += amount
        if team_id is not None:
            by_team[team_id] += amount
    for user_id, amount in sorted(by_user.items()):
        settle(session, user_id, released=amount)
    for team_id, amount in sorted(by_team.items()):
        if amount:
            session.execute(
                update(TeamSpendCounter)
                .where(TeamSpendCounter.team_id == team_id)
                .values(held_usd=TeamSpendCounter.held_usd - amount)
                .execution_options(synchronize_session=False)
            )


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


def _standing_columns(counter: Counter, owner: type[User] | type[Team]) -> tuple[Any, ...]:
    return (
        counter.held_usd,
        _day_spent(counter),
        _month_spent(counter),
        owner.daily_budget_usd,
        owner.monthly_budget_usd,
        func.now(),
        func.timezone("UTC", func.date_trunc("day", _UTC_NOW)),
        func.timezone("UTC", func.date_trunc("month", _UTC_NOW)),
    )


def _user_standing(session: Session, user_id: uuid.UUID) -> _Standing:
    row = session.execute(
        select(*_standing_columns(SpendCounter, User)).where(
            SpendCounter.user_id == user_id, User.id == SpendCounter.user_id
        )
    ).one()
    return _Standing(*row)


def _team_standing(session: Session, user_id: uuid.UUID) -> tuple[Team, _Standing] | None:
    """The standing of the user's team, if it has one."""
    row = session.execute(
        select(Team, *_standing_columns(TeamSpendCounter, Team)).where(
            User.id == user_id, Team.id == User.team_id, TeamSpendCounter.team_id == Team.id
        )
    ).one_or_none()
    if row is None:
        return None
    return row[0], _Standing(*row[1:])


@dataclass(frozen=True)
class _Period:
    name: str
    budget: Decimal
    spent: Decimal
    held: Decimal
    resets: datetime
    now: datetime
    team: Team | None

    def remaining(self, wanted: Decimal) -> Decimal:
        return self.budget - self.spent - self.held - wanted


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _periods(standing: _Standing, team: Team | None) -> list[_Period]:
    return [
        _Period(name, budget, spent, standing.held, resets, standing.now, team)
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


def refusal(session: Session, user_id: uuid.UUID, amount: Decimal) -> BudgetExceededError:
    """Why `reserve` refused `amount`: the budget (the user's or the team's) and period that do
    not fit, what is spent and held, what remains, and when the period resets."""
    bounded = _periods(_user_standing(session, user_id), None)
    team_standing = _team_standing(session, user_id)
    if team_standing is not None:
        bounded += _periods(team_standing[1], team_standing[0])
    if not bounded:
        # Every budget was lifted since the hold was refused.
        return BudgetExceededError(
            "The budget hold did not fit, but the budgets have changed since: retry.",
            retry_after_s=1,
        )
    # The period that does not fit now; if a hold ended meanwhile and all fit, the tighter.
    period = min(bounded, key=lambda p: p.remaining(amount))
    used = period.spent + period.held
    remaining = max(period.budget - used, Decimal(0))
    details: dict[str, Any] = {
        "scope": "user" if period.team is None else "team",
        "budget": period.name,
        "budget_usd": usd(period.budget),
        "used_usd": usd(used),
        "remaining_usd": usd(remaining),
        "requested_usd": usd(amount),
        "resets_at": period.resets.isoformat(),
    }
    if period.team is None:
        message = (
            f"The {period.name} budget of ${usd(period.budget)} would be exceeded: "
            f"${usd(remaining)} remains (spent and held for unfinished jobs: ${usd(used)}) and "
            f"this request needs up to ${usd(amount)}. The {period.name} budget resets at "
            f"{period.resets.isoformat()}."
        )
    else:
        details |= {"team_id": str(period.team.id), "team_name": period.team.name}
        message = (
            f"Your team {period.team.name!r} would exceed its {period.name} budget of "
            f"${usd(period.budget)}: ${usd(remaining)} remains for the whole team (spent and "
            f"held for its members' unfinished jobs: ${usd(used)}) and this request needs up "
            f"to ${usd(amount)}. The team's {period.name} budget resets at "
            f"{period.resets.isoformat()}."
        )
    return BudgetExceededError(
        message,
        details=details,
        retry_after_s=max(1, math.ceil((period.resets - period.now).total_seconds())),
    )
