"""Semantic cache entries: earlier answers found again by the meaning of a prompt, not its bytes.

Each entry belongs to one user and one scope (a digest of the model, the generation parameters
and every message but the last user one): a lookup only ever reads its own user's scope. The
embedding of the last user message is kept twice: as a sign code (one bit per random hyperplane)
that each worker process keeps in memory for the scopes it serves and ranks a whole scope by
(worker/semantic/index.py), and as float16 values that the few best-ranked candidates are scored
by exactly. No vector extension is needed: neither the machine's PostgreSQL nor the embedded one
has pgvector.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, created_at_column


class SemanticCacheEntry(Base):
    __tablename__ = "semantic_cache_entries"
    __table_args__ = (
        # A worker reads a scope's entries newer than those it holds: (user, scope, id) order.
        Index("ix_semantic_cache_entries_scope", "user_id", "scope", "id"),
        Index("ix_semantic_cache_entries_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    # SHA-256 of what must be equal for an answer to be reused (worker/semantic/scope.py).
    scope: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # One bit per hyperplane (worker/semantic/codes.py).
    code: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # The unit embedding as little-endian float16 values.
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # The provider's reply as the exact cache keeps it (worker/providers/base.py ProviderResponse).
    response: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
