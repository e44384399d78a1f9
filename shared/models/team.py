"""Teams: a group of users with budgets of its own, checked together with each member's."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, created_at_column


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # Cost ceilings in dollars per UTC day / calendar month for all members together; NULL means
    # no ceiling.
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = created_at_column()
