"""Who is sending a webhook message now: a worker claims one attempt under a lease, with the
target and the secrets to sign it with, and the dispatcher hands back deliveries whose worker
vanished before reporting, so that every message is sent again rather than lost."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from shared.models import (
    AttemptOutcome,
    MessageStatus,
    User,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from shared.repositories.intervals import seconds
from shared.webhook_events import PING


@dataclass(frozen=True)
class ClaimedAttempt:
    """One attempt a worker now owns: where to send what, and the secrets to sign it with."""

    message_id: str
    number: int
    url: str
    body: str
    secrets: list[str]
    endpoint_id: uuid.UUID | None
    request_id: str | None = None


def claim_attempt(
    session: Session, message_id: str, expected_attempts: int, lease_s: float
) -> ClaimedAttempt | None:
    """Start attempt number expected_attempts + 1 of a pending message; None if the message is
    not pending or that attempt was already started (a duplicate or stale task). A message for
    an endpoint that was disabled or lost its URL fails here without an attempt."""
    row = session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.id == message_id,
            WebhookMessage.status == MessageStatus.PENDING,
            WebhookMessage.attempt_count == expected_attempts,
        )
        .values(
            status=MessageStatus.DELIVERING,
            attempt_count=WebhookMessage.attempt_count + 1,
            lease_expires_at=func.now() + seconds(lease_s),
            next_attempt_at=None,
            dispatched_at=None,
        )
        .returning(
            WebhookMessage.attempt_count,
            WebhookMessage.endpoint_id,
            WebhookMessage.user_id,
            WebhookMessage.url,
            WebhookMessage.body,
            WebhookMessage.event_type,
            WebhookMessage.request_id,
        )
    ).one_or_none()
    if row is None:
        return None
    if row.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        if endpoint is None or (not endpoint.enabled and row.event_type != PING):
            _fail_unsent(session, message_id, "The endpoint is disabled; nothing was sent.")
            return None
        url = endpoint.url
        secrets = _signing_secrets(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at
        )
    else:
        user = session.get(User, row.user_id)
        if user is None or row.url is None:
            _fail_unsent(session, message_id, "The message has no target; nothing was sent.")
            return None
        url = row.url
        secrets = _signing_secrets(
            user.callback_secret,
            user.callback_previous_secret,
            user.callback_previous_secret_expires_at,
        )
    session.add(
        WebhookAttempt(
            message_id=message_id,
            number=row.attempt_count,
            url=url,
            outcome=AttemptOutcome.IN_PROGRESS,
        )
    )
    session.flush()
    return ClaimedAttempt(
        message_id=message_id,
        number=row.attempt_count,
        url=url,
        body=row.body,
        secrets=secrets,
        endpoint_id=row.endpoint_id,
        request_id=row.request_id,
    )


def _signing_secrets(current: str, previous: str | None, expires: datetime | None) -> list[str]:
    # The database clock decides expiry elsewhere; here the worker's clock is close enough,
    # since a few seconds either way only adds or drops a redundant signature.
    if previous is not None and expires is not None and expires > datetime.now(expires.tzinfo):
        return [current, previous]
    return [current]


def _fail_unsent(session: Session, message_id: str, reason: str) -> None:
    session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == message_id)
        .values(
            status=MessageStatus.FAILED,
            attempt_count=WebhookMessage.attempt_count - 1,
            lease_expires_at=None,
            last_error=reason,
            finished_at=func.now(),
        )
    )


def expire_deliveries(session: Session) -> int:
    """Deliveries whose worker vanished (lease expired) become pending again at once; their
    unfinished attempt is recorded as interrupted. The number of messages handed back."""
    handed_back = session.scalars(
        update(WebhookMessage)
        .where(
            WebhookMessage.status == MessageStatus.DELIVERING,
            WebhookMessage.lease_expires_at < func.now(),
        )
        .values(
            status=MessageStatus.PENDING,
            lease_expires_at=None,
            next_attempt_at=func.now(),
        )
        .returning(WebhookMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    if handed_back:
        session.execute(
            update(WebhookAttempt)
            .where(
                WebhookAttempt.message_id.in_(handed_back),
                WebhookAttempt.outcome == AttemptOutcome.IN_PROGRESS,
            )
            .values(
                outcome=AttemptOutcome.INTERRUPTED,
                error_code="worker_lost",
                error_message="The worker stopped during this attempt; the message was resent.",
                finished_at=func.now(),
            )
            .execution_options(synchronize_session=False)
        )
    return len(handed_back)
