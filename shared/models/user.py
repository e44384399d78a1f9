"""Users: the unit that owns jobs and is charged for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, created_at_column
from shared.webhook_secrets import new_webhook_secret


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("weight >= 1", name="weight_positive"),
        CheckConstraint(
            "max_concurrency IS NULL OR max_concurrency >= 1", name="max_concurrency_positive"
        ),
        CheckConstraint(
            "injection_screening IS NULL OR injection_screening IN ('flag', 'reject')",
            name="injection_screening",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # Cost ceilings in dollars per UTC day / calendar month; NULL means no ceiling.
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    # Signs deliveries to jobs' own callback_url (endpoints have their own secrets). After a
    # rotation the previous one also signs until it expires.
    callback_secret: Mapped[str] = mapped_column(
        String(100), nullable=False, default=new_webhook_secret
    )
    callback_previous_secret: Mapped[str | None] = mapped_column(String(100))
    callback_previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )
    # Fair share (shared/repositories/job_dispatch.py): a user's share of the worker slots
    # within a priority class is proportional to its weight; max_concurrency caps its jobs in
    # flight.
    weight: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, server_default=text("1")
    )
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    # The team whose budgets are checked with the user's own (at most one); NULL: none.
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # Input safety (README: "Input safety"), set by the operator and read with the user's key:
    # every job of the user is PII-scrubbed (and its answer restored); the stored job keeps the
    # original prompt only with keep_original_prompts; injection screening flags or rejects.
    scrub_pii: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    restore_pii: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    keep_original_prompts: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    injection_screening: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = created_at_column()
