"""Budget alerts: which budget fractions a charge crossed, found and recorded in the very
statement that charges it (budgets.settle, and the worker's one-statement final write).

A charge of `cost` that leaves a period's spend at `spent` moved it from `spent - cost`: the
counter's UPDATE (shared/repositories/budgets.py spent_plus) adds the cost to the period's total,
from 0 when the period has turned. It crossed fraction f of budget B when
`spent - cost < f * B <= spent`. The row lock of that UPDATE orders concurrent charges, so each
sees the spend the one before it left and exactly one of them crosses; the alert's key
(user, period, period start, fraction) with ON CONFLICT DO NOTHING keeps it to one per period
even when a budget changed mid-period and the spend crosses the same fraction again.

What it costs: the detection is a CTE of the charging statement (a primary-key read of the
user's budgets, about 0.02 ms of execution without a budget), so a job's charge is still one
statement, with or without a budget; with no fractions configured the statements are the ones
without the CTE. Only a
charge that crosses a fraction, and only where a webhook may wait, pays one more statement per
alert: the INSERT of its messages, one per endpoint subscribed to `budget.threshold`
(shared/repositories/webhook_messages.py enqueue_budget_alerts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Row,
    Select,
    String,
    bindparam,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.models import BudgetAlert, User
from shared.models.budget_alert import Fraction

# The bind parameter the statements take the configured fractions in.
FRACTIONS_PARAM = "alert_fractions"
_alerts = BudgetAlert.__table__
_users = User.__table__


@dataclass(frozen=True)
class Alert:
    """A budget fraction a user's daily or monthly spend crossed."""

    user_id: uuid.UUID
    period: str
    period_start: date
    fraction: Decimal
    budget_usd: Decimal
    spent_usd: Decimal


def fractions_param(fractions: Sequence[Decimal]) -> dict[str, list[Decimal]]:
    """The statements' parameter for the configured fractions."""
    return {FRACTIONS_PARAM: list(fractions)}


def recorded(settled: CTE, cost: ColumnElement[Decimal]) -> CTE:
    """The INSERT of the alerts a charge of `cost` crossed, RETURNING those newly recorded.

    `settled` is the counter UPDATE's CTE, RETURNING user_id, day, day_spent_usd, month and
    month_spent_usd as they are after the charge; the fractions come in FRACTIONS_PARAM."""
    # One read of the user's budgets; without one, no row, and nothing below runs.
    budgeted = (
        select(settled, _users.c.daily_budget_usd, _users.c.monthly_budget_usd)
        .select_from(settled.join(_users, _users.c.id == settled.c.user_id))
        .where(_users.c.daily_budget_usd.is_not(None) | _users.c.monthly_budget_usd.is_not(None))
        .cte("budgeted")
    )
    fraction = (
        func.unnest(bindparam(FRACTIONS_PARAM, type_=ARRAY(Fraction)))
        .table_valued("fraction")
        .render_derived(name="f")
    )

    def crossed(period: str, start: str, spent: str, budget: str) -> Select[Any]:
        threshold = fraction.c.fraction * budgeted.c[budget]
        return (
            select(
                budgeted.c.user_id,
                literal(period, String),
                budgeted.c[start],
                fraction.c.fraction,
                budgeted.c[budget],
                budgeted.c[spent],
            )
            .select_from(budgeted.join(fraction, true()))
            .where(
                budgeted.c[budget].is_not(None),
                budgeted.c[spent] - cost < threshold,
                threshold <= budgeted.c[spent],
            )
        )

    crossings = union_all(
        crossed("daily", "day", "day_spent_usd", "daily_budget_usd"),
        crossed("monthly", "month", "month_spent_usd", "monthly_budget_usd"),
    )
    columns = ["user_id", "period", "period_start", "fraction", "budget_usd", "spent_usd"]
    return (
        pg_insert(_alerts)
        .from_select(columns, crossings)
        .on_conflict_do_nothing()
        .returning(*(_alerts.c[name] for name in columns))
        .cte("alerts")
    )


def alerts_of(rows: Iterable[Row[Any]]) -> list[Alert]:
    """Alerts from rows RETURNING recorded()'s columns."""
    return [Alert(**row._mapping) for row in rows]
