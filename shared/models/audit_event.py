"""The audit log: one row per admin or key action (a user or team created, a budget, fair
share or team changed, a key issued, changed or revoked, a signing secret rotated), written in
the action's own transaction. A row says who acted, on what, and which fields changed from what
to what; it never holds a secret, a key or a hash of one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, created_at_column


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # GET /v1/admin/audit reads newest first, everything or one target's or one user's rows.
        Index("ix_audit_events_created_id", "created_at", "id"),
        Index("ix_audit_events_target", "target_id", "created_at", "id"),
        Index("ix_audit_events_user", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = created_at_column()
    # "admin" (the admin API), "cli" (the `promptq` admin commands) or "api_key" (a user acting
    # on their own keys and secrets, with actor_key_id the key that made the request).
    actor_type: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(50), nullable=False)
    target_type: Mapped[str] = mapped_column(String(30), nullable=False)
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # The user the target is or belongs to (NULL: a team, which belongs to none). No foreign key:
    # the log outlives what it describes.
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # {field: {"before": ..., "after": ...}} for each field the action changed.
    changes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
