"""Users: the unit that owns jobs and is charged for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, created_at_column


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # Cost ceilings in dollars per UTC day / calendar month; NULL means no ceiling.
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = created_at_column()
