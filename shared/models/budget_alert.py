"""Budget alerts sent: one row per user, period (a UTC day or month), the period's start and the
budget fraction crossed. Its key makes "once per period per fraction" exact: the statement that
charges the crossing cost inserts the row with ON CONFLICT DO NOTHING, so of any number of
concurrent or repeated crossings exactly one inserts it and announces it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, created_at_column

# A fraction of a budget, 0 < f <= 1, to four decimal places (0.8 is 80%).
Fraction = Numeric(5, 4)


class BudgetAlert(Base):
    __tablename__ = "budget_alerts"
    __table_args__ = (CheckConstraint("period IN ('daily', 'monthly')", name="period_known"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    fraction: Mapped[Decimal] = mapped_column(Fraction, primary_key=True)
    # The budget when the fraction was crossed, and the period's spend just after the charge
    # that crossed it.
    budget_usd: Mapped[Decimal] = mapped_column(Money, nullable=False)
    spent_usd: Mapped[Decimal] = mapped_column(Money, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
