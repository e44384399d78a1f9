"""Webhook messages (one event for one target, signed the same way on every retry) and the
attempts made to deliver them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, created_at_column


class MessageStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    DELIVERING = "delivering"  # a worker is sending it (until lease_expires_at)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every scheduled attempt failed, or the endpoint was disabled


class AttemptOutcome(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The worker died mid-attempt; the message was handed to another.
    INTERRUPTED = "interrupted"


def new_message_id() -> str:
    """Standard Webhooks' `webhook-id`: unique per message, stable across its retries."""
    return f"msg_{uuid.uuid4().hex}"


class WebhookMessage(Base):
    __tablename__ = "webhook_messages"
    __table_args__ = (
        # The dispatcher's two scans: due pending messages, and deliveries whose worker vanished.
        Index(
            "ix_webhook_messages_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_webhook_messages_leased",
            "lease_expires_at",
            postgresql_where=text("status = 'delivering'"),
        ),
        Index("ix_webhook_messages_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_message_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    # NULL for a delivery to a job's own callback_url (signed with the user's callback secret).
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    # The callback_url; endpoint deliveries go to the endpoint's URL as it is at each attempt.
    url: Mapped[str | None] = mapped_column(String(2048))
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(50), nullable=False)
    # The X-Request-ID of the job's submission (None for pings), sent with every attempt.
    request_id: Mapped[str | None] = mapped_column(String(128))
    # The exact bytes signed and sent, identical on every attempt.
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    # Attempts started so far. A delivery task names the count it expects, so a stale or
    # duplicate task can never start an attempt out of schedule.
    attempt_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    # When the next attempt is due (NULL while one runs or once finished)...
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # ...and when a task for it was last published: a due message is published again only if
    # no worker started it within WEBHOOK_REDISPATCH_S (a lost publish, a Redis that lost data).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("message_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True, nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False)
    # The address actually connected to (after the SSRF check), when a connection was made.
    peer: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(String(500))
    # The start of the receiver's answer, for the owner to see why it failed.
    response_body: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
