"""Spend: each user's and each team's running totals against their budgets, so admission checks
a budget with one conditional UPDATE of one row instead of summing usage and reservations under
a lock.

`held_usd` is the sum of the open reservations (jobs.reserved_usd) of the user, or of the jobs
admitted as the team's (jobs.team_id); the day and month totals are the usage cost of the UTC
day and month named beside them (a total whose period has passed counts as 0). Every write that
changes a reservation or adds a usage row moves these in the same transaction
(shared/repositories/budgets.py), so they always equal the sums they stand for.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money


class SpendColumns:
    """The totals a budget is checked against, alike for a user and a team."""

    held_usd: Mapped[Decimal] = mapped_column(
        Money, nullable=False, default=Decimal(0), server_default=text("0")
    )
    day: Mapped[date] = mapped_column(
        Date, nullable=False, server_default=text("(timezone('UTC', now()))::date")
    )
    day_spent_usd: Mapped[Decimal] = mapped_column(
        Money, nullable=False, default=Decimal(0), server_default=text("0")
    )
    # The first day of the UTC month `month_spent_usd` belongs to.
    month: Mapped[date] = mapped_column(
        Date,
        nullable=False,
        server_default=text("(date_trunc('month', timezone('UTC', now())))::date"),
    )
    month_spent_usd: Mapped[Decimal] = mapped_column(
        Money, nullable=False, default=Decimal(0), server_default=text("0")
    )


class SpendCounter(SpendColumns, Base):
    __tablename__ = "spend_counters"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )


class TeamSpendCounter(SpendColumns, Base):
    __tablename__ = "team_spend_counters"

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
