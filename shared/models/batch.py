"""Batches: many jobs admitted together, each with the caller's own `custom_id`."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, created_at_column


class BatchStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    # Cancel was asked for: queued jobs are cancelled, running ones still finish.
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    # Every job of the batch failed.
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class BatchOrigin(enum.StrEnum):
    """The API a batch was created through, whose shape and ids its owner knows it by."""

    PROMPTQ = "promptq"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


# Not yet settled: the beat (worker/tasks/settle_batches.py) still has to look at these.
OPEN_BATCH_STATUSES = frozenset({BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING})
_OPEN_SQL = "status IN ('in_progress', 'cancelling')"


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in BatchStatus) + ")", name="status"
        ),
        CheckConstraint(
            "origin IN (" + ", ".join(f"'{o.value}'" for o in BatchOrigin) + ")", name="origin"
        ),
        # GET /v1/batches: the caller's batches newest first.
        Index("ix_batches_user_id_created_at", "user_id", "created_at", "id"),
        # The settling beat's scans touch open batches only, the expiry scan by deadline.
        Index("ix_batches_open_expires_at", "expires_at", postgresql_where=text(_OPEN_SQL)),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    # The owner's team when the batch was admitted, whose budgets hold its jobs (each job's
    # team_id is this); NULL: no team.
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=BatchStatus.IN_PROGRESS,
        server_default=text("'in_progress'"),
    )
    origin: Mapped[str] = mapped_column(
        String(16),
        nullable=False,
        default=BatchOrigin.PROMPTQ,
        server_default=text("'promptq'"),
    )
    created_at: Mapped[datetime] = created_at_column()
    # The end of the completion window: a batch still open then expires.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
