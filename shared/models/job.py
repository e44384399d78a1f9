"""Jobs: one request for a model completion, from admission to its final state."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Money, created_at_column


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


def _in(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(JobStatus)})", name="status"),
        CheckConstraint(f"priority IN ({_in(Priority)})", name="priority"),
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_jobs_status", "status"),
        # The backlog the dispatcher reads in fair order: per class, per user, oldest first.
        Index(
            "ix_jobs_backlog",
            "priority",
            "user_id",
            "queued_at",
            postgresql_where=text("status = 'queued' AND dispatched_at IS NULL"),
        ),
        # In flight (job_dispatch.IN_FLIGHT_SQL): the broker window's contents, per user.
        Index(
            "ix_jobs_in_flight",
            "user_id",
            postgresql_where=text(
                "dispatched_at IS NOT NULL AND (status IN ('queued', 'running') "
                "OR (status = 'cancelled' AND lease_token IS NOT NULL))"
            ),
        ),
        # The sweeper's scan: running jobs by lease expiry.
        Index(
            "ix_jobs_lease_expires_at",
            "lease_expires_at",
            postgresql_where=text("status = 'running'"),
        ),
        # One job per (user, Idempotency-Key); jobs without a key are not constrained.
        Index(
            "uq_jobs_user_id_idempotency_key",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # Open reservations are summed at every admission of the user.
        Index(
            "ix_jobs_user_id_open_reservations",
            "user_id",
            postgresql_where=text("reserved_usd > 0"),
        ),
        # Whether a batch still has unfinished jobs (the settling beat asks every few seconds):
        # only queued and running batch jobs are in it, so the answer is one index probe.
        Index(
            "ix_jobs_batch_id_unfinished",
            "batch_id",
            postgresql_where=text("batch_id IS NOT NULL AND status IN ('queued', 'running')"),
        ),
        UniqueConstraint("batch_id", "custom_id", name="uq_jobs_batch_id_custom_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobStatus.QUEUED)
    priority: Mapped[str] = mapped_column(String(8), nullable=False, default=Priority.NORMAL)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    fallbacks: Mapped[list[str]] = mapped_column(JSONB, nullable=False, default=list)
    # `model: "auto"`: the chain chosen at admission and why (shared/model_routing.py); the
    # worker walks exactly `chain`. NULL for a job that named its model.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The model call as the user asked for it: messages, max_tokens, temperature.
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # `metadata` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False, default=dict)
    # {"type": "text"} | {"type": "json_object"} | {"type": "json_schema", "schema": {...}}
    response_format: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    max_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    # Worst-case cost held against the user's budgets (and its team's) until the job settles
    # (then 0).
    reserved_usd: Mapped[Decimal] = mapped_column(
        Money, nullable=False, default=Decimal(0), server_default=text("0")
    )
    # The team whose budgets held this job at admission (its owner's team then): settlement and
    # usage by team follow it, even if the owner changes team meanwhile. NULL: no team.
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # The caller's labels for cost attribution (GET /v1/usage?group_by=tag), distinct. No
    # Python default: an INSERT from a SELECT (the admission's) would bind it as NULL.
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the canonical request body, to tell a true repeat from a reused key.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    custom_id: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the submission, carried to the worker's log lines and the webhooks.
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Opt-in exact-match response cache (only honoured for temperature 0).
    cache: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    # PII scrubbing in effect for the job (its own request or its owner's setting): the worker
    # scrubs the prompt before every provider call, and with restore_pii puts the originals
    # back in the answer. pii_vault: the placeholder mapping, encrypted (shared/input_safety/
    # pii_vault.py), kept only while a job whose stored prompt is the scrubbed one waits to
    # be restored; the final write clears it.
    scrub_pii: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    restore_pii: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("false")
    )
    pii_vault: Mapped[str | None] = mapped_column(Text)
    # The prompt-injection screening verdict, for a screened job: score, rules, action.
    screening: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # When the job (re)entered `queued`; the sweeper republishes jobs whose message is overdue.
    queued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # When it was last dispatched (shared/repositories/job_dispatch.py), stamped just before its
    # message is published: NULL while the job waits in the backlog; stamped again when a lost
    # message is published anew.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A job put back after a long Retry-After is not claimable before this time.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False, default=Decimal(0))

    # Lease: the claiming worker's token and deadline; the final write is fenced by the token.
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deliveries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
