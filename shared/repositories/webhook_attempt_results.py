"""What one webhook attempt's outcome does, written by the worker that holds its lease: the
attempt is recorded, the message moves on (succeeded, back on its retry schedule, or failed),
and the endpoint's health follows (a success clears its failing run; a 410 or a failing run
longer than the policy allows disables it), all under one lock of the endpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.models import (
    AttemptOutcome,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from shared.repositories.intervals import seconds
from shared.repositories.webhook_delivery_leases import ClaimedAttempt
from shared.webhook_retry_policy import RetryPolicy

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class AttemptReport:
    """What one attempt found out, as the delivery code classified it."""

    succeeded: bool
    latency_ms: int
    status_code: int | None = None
    peer: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    response_body: str | None = None
    # The receiver asked for this much quiet (429/503 Retry-After).
    retry_after_s: float | None = None
    # 410 Gone: the receiver wants no more messages; the endpoint is disabled.
    gone: bool = False


def record_attempt_result(
    session: Session, claim: ClaimedAttempt, report: AttemptReport, policy: RetryPolicy
) -> str | None:
    """Write the attempt's outcome and move the message on: succeeded, scheduled for its next
    attempt, or failed. Also keeps the endpoint's health: a success clears its failing run, a
    410 or a run of failures longer than the policy allows disables it. Returns the message's
    new status; None if this worker's lease had expired and the message was handed on (its
    attempt stays recorded as interrupted)."""
    owned = session.scalar(
        select(WebhookMessage.id)
        .where(
            WebhookMessage.id == claim.message_id,
            WebhookMessage.status == MessageStatus.DELIVERING,
            WebhookMessage.attempt_count == claim.number,
        )
        .with_for_update()
    )
    if owned is None:
        return None
    session.execute(
        update(WebhookAttempt)
        .where(WebhookAttempt.message_id == claim.message_id, WebhookAttempt.number == claim.number)
        .values(
            outcome=AttemptOutcome.SUCCEEDED if report.succeeded else AttemptOutcome.FAILED,
            peer=report.peer,
            status_code=report.status_code,
            latency_ms=report.latency_ms,
            error_code=report.error_code,
            error_message=_clip(report.error_message),
            response_body=report.response_body,
            finished_at=func.now(),
        )
    )
    endpoint = _lock_endpoint(session, claim.endpoint_id)
    if report.succeeded:
        if endpoint is not None:
            endpoint.failing_since = None
        return _move(session, claim.message_id, MessageStatus.SUCCEEDED, finished_at=func.now())
    error = _clip(f"attempt {claim.number}: {report.error_message}")
    wait = policy.wait_before(claim.number + 1, report.retry_after_s)
    if endpoint is not None:
        _note_failure(session, endpoint, report, policy)
    if report.gone or (endpoint is not None and not endpoint.enabled):
        wait = None
    if wait is None:
        return _move(
            session,
            claim.message_id,
            MessageStatus.FAILED,
            last_error=error,
            finished_at=func.now(),
        )
    return _move(
        session,
        claim.message_id,
        MessageStatus.PENDING,
        last_error=error,
        next_attempt_at=func.now() + seconds(wait),
    )


def _lock_endpoint(session: Session, endpoint_id: uuid.UUID | None) -> WebhookEndpoint | None:
    if endpoint_id is None:
        return None
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _note_failure(
    session: Session, endpoint: WebhookEndpoint, report: AttemptReport, policy: RetryPolicy
) -> None:
    if report.gone:
        endpoint.enabled = False
        endpoint.disabled_reason = (
            "The endpoint answered 410 Gone, so promptq stopped sending to it. "
            "Set enabled to true to receive messages again."
        )
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = func.now()
        return
    failing_for = session.scalar(select(func.now() - endpoint.failing_since))
    if failing_for is not None and failing_for > timedelta(seconds=policy.disable_after_s):
        endpoint.enabled = False
        endpoint.disabled_reason = _clip(
            f"Every delivery failed since {endpoint.failing_since.isoformat()} "
            f"(last: {report.error_message}), so promptq stopped sending to it. "
            "Fix the receiver, then set enabled to true."
        )


def _move(session: Session, message_id: str, status: MessageStatus, **values: object) -> str:
    session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == message_id)
        .values(status=status, lease_expires_at=None, **values)
    )
    return status


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_ERROR_CHARS]
