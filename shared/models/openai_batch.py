"""An OpenAI-compatible batch: the OpenAI-side fields of a native batch, or, when its input
file failed validation, a batch that never got a native one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, created_at_column


class OpenAIBatch(Base):
    __tablename__ = "openai_batches"
    __table_args__ = (
        # GET /openai/v1/batches: the caller's batches newest first.
        Index("ix_openai_batches_user_id_created_at", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    # None only for a batch that failed validation before revision 0010; since then such a
    # batch has a native one without jobs (status failed), so its batch.failed event is sent.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("batches.id", ondelete="CASCADE"), unique=True
    )
    input_file_id: Mapped[str] = mapped_column(String(64), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(64), nullable=False)
    completion_window: Mapped[str] = mapped_column(String(16), nullable=False)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
