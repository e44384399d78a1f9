"""Webhook messages: created in the transaction that makes a job final (so an event is never
lost between the commit and the publish), claimed one attempt at a time with a lease, and put
back on their retry schedule, done, or failed after each attempt."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from shared.models import (
    AttemptOutcome,
    Batch,
    Job,
    MessageStatus,
    User,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from shared.webhook_events import (
    BATCH_EVENTS,
    PING,
    batch_event_body,
    job_event_body,
    job_event_type,
    ping_body,
)

# (message id, attempts already made): what a delivery task is published with.
Dispatch = tuple[str, int]
MAX_ERROR_CHARS = 500


# A message's publish time is its commit's start; its push into the queue comes this much later
# at most, as far as ordering the queue by publish time goes.
_PUSH_MARGIN_S = 5.0


def _seconds(value: float) -> ColumnElement[object]:
    return text(f"interval '{float(value)} seconds'")


def enqueue_job_events(
    session: Session, job_ids: Sequence[uuid.UUID], base_url: str
) -> list[Dispatch]:
    """Create the messages announcing these jobs' final states: one per enabled endpoint of the
    owner subscribed to the event, and one for the job's callback_url. Call it in the
    transaction that made the jobs final; publish what it returns after the commit."""
    if not job_ids:
        return []
    return enqueue_events_for(
        session, session.scalars(select(Job).where(Job.id.in_(job_ids))).all(), base_url
    )


def enqueue_events_for(session: Session, jobs: Sequence[Job], base_url: str) -> list[Dispatch]:
    """enqueue_job_events for job rows the caller already has, as the final write left them."""
    if not jobs:
        return []
    owners = {job.user_id for job in jobs}
    endpoints: dict[uuid.UUID, list[WebhookEndpoint]] = {owner: [] for owner in owners}
    for endpoint in session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.user_id.in_(owners), WebhookEndpoint.enabled.is_(True)
        )
    ):
        endpoints[endpoint.user_id].append(endpoint)
    messages: list[WebhookMessage] = []
    for job in jobs:
        event_type = job_event_type(job.status)
        if event_type is None:
            continue
        targets: list[tuple[uuid.UUID | None, str | None]] = [
            (e.id, None) for e in endpoints[job.user_id] if event_type in e.event_types
        ]
        if job.callback_url:
            targets.append((None, job.callback_url))
        if not targets:
            continue
        body = job_event_body(job, base_url)
        messages.extend(
            _new_message(job.user_id, event_type, body, endpoint_id, url, job.id, job.request_id)
            for endpoint_id, url in targets
        )
    session.add_all(messages)
    session.flush()
    return [(m.id, 0) for m in messages]


def enqueue_batch_event(
    session: Session, batch: Batch, counts: dict[str, int], base_url: str
) -> list[Dispatch]:
    """Create the messages announcing that `batch` settled: one per enabled endpoint of the
    owner subscribed to the event (a batch has no callback_url; its jobs' own events go to
    theirs). Call it in the transaction that settled the batch; publish after the commit."""
    event_type = BATCH_EVENTS[batch.status]
    endpoints = session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.user_id == batch.user_id,
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.event_types.contains([event_type]),
        )
    ).all()
    if not endpoints:
        return []
    body = batch_event_body(batch, counts, base_url)
    messages = [
        _new_message(batch.user_id, event_type, body, endpoint_id, None, None)
        for endpoint_id in endpoints
    ]
    session.add_all(messages)
    session.flush()
    return [(m.id, 0) for m in messages]


def enqueue_ping(session: Session, endpoint: WebhookEndpoint) -> Dispatch:
    message = _new_message(
        endpoint.user_id, PING, ping_body(str(endpoint.id)), endpoint.id, None, None
    )
    session.add(message)
    session.flush()
    return (message.id, 0)


def _new_message(
    user_id: uuid.UUID,
    event_type: str,
    body: str,
    endpoint_id: uuid.UUID | None,
    url: str | None,
    job_id: uuid.UUID | None,
    request_id: str | None = None,
) -> WebhookMessage:
    # Due now and published right after the commit; if that publish is lost, the dispatcher
    # publishes it again once redispatch_s has passed.
    return WebhookMessage(
        user_id=user_id,
        endpoint_id=endpoint_id,
        url=url,
        job_id=job_id,
        request_id=request_id,
        event_type=event_type,
        body=body,
        status=MessageStatus.PENDING,
        next_attempt_at=func.now(),
        dispatched_at=func.now(),
    )


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
            lease_expires_at=func.now() + _seconds(lease_s),
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


@dataclass(frozen=True)
class RetryPolicy:
    schedule_s: Sequence[float]
    jitter: float
    disable_after_s: float

    def wait_before(self, attempt_number: int, retry_after_s: float | None) -> float | None:
        """Seconds before attempt `attempt_number` (1-based), or None past the schedule."""
        if attempt_number > len(self.schedule_s):
            return None
        base = self.schedule_s[attempt_number - 1]
        wait = base * random.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after_s is not None:
            # Honoured, but never beyond the schedule's longest wait.
            wait = max(wait, min(retry_after_s, max(self.schedule_s)))
        return wait


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
        next_attempt_at=func.now() + _seconds(wait),
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


def due_messages(
    session: Session,
    redispatch_s: float,
    limit: int,
    *,
    orphan_grace_s: float,
    oldest_waiting: str | None,
) -> list[Dispatch]:
    """Take pending messages whose next attempt is due and that no message in the broker will
    bring to a worker, and mark them published (the caller publishes after the commit):
    - not published in the last `redispatch_s`, or
    - published more than `orphan_grace_s` ago and before `oldest_waiting` (the message of the
      oldest delivery still waiting in the queue; None when the queue is empty): the queue is
      first in, first out, so theirs was taken by a worker, which then neither claimed nor
      handed it back (killed first), or was never pushed.
    A message a live worker has taken and not yet started is published twice at worst, which
    is harmless: an attempt is claimed once. SKIP LOCKED keeps two dispatchers from taking the
    same message."""
    published = WebhookMessage.dispatched_at
    orphaned = published < func.now() - _seconds(orphan_grace_s)
    if oldest_waiting is not None:
        # NULL (no such row, or that message is being delivered) orphans nothing this time.
        waiting_since = (
            select(WebhookMessage.dispatched_at)
            .where(WebhookMessage.id == oldest_waiting)
            .scalar_subquery()
        )
        orphaned &= published < waiting_since - _seconds(_PUSH_MARGIN_S)
    due = (
        select(WebhookMessage.id)
        .where(
            WebhookMessage.status == MessageStatus.PENDING,
            WebhookMessage.next_attempt_at <= func.now(),
            published.is_(None) | (published < func.now() - _seconds(redispatch_s)) | orphaned,
        )
        .order_by(WebhookMessage.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id.in_(due))
        .values(dispatched_at=func.now())
        .returning(WebhookMessage.id, WebhookMessage.attempt_count)
        .execution_options(synchronize_session=False)
    ).all()
    return [(row.id, row.attempt_count) for row in rows]


def retry_now(session: Session, message: WebhookMessage) -> Dispatch:
    """Send a message again now (the owner asked). A finished message gets one more attempt
    (more if its schedule still has room); a pending one stops waiting. The caller refuses a
    message that is being delivered."""
    message.status = MessageStatus.PENDING
    message.next_attempt_at = func.now()
    message.dispatched_at = func.now()
    message.finished_at = None
    session.flush()
    return (message.id, message.attempt_count)


def get_message(session: Session, endpoint_id: uuid.UUID, message_id: str) -> WebhookMessage | None:
    return session.scalars(
        select(WebhookMessage)
        .where(WebhookMessage.id == message_id, WebhookMessage.endpoint_id == endpoint_id)
        .with_for_update()
    ).one_or_none()


def list_deliveries(
    session: Session,
    endpoint_id: uuid.UUID,
    after: tuple[datetime, str] | None,
    limit: int,
    status: str | None = None,
) -> list[tuple[WebhookMessage, list[WebhookAttempt]]]:
    """The endpoint's messages newest first (keyset after (created_at, id)), each with its
    attempts in order."""
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookMessage.status == status)
    if after is not None:
        query = query.where(
            (WebhookMessage.created_at < after[0])
            | ((WebhookMessage.created_at == after[0]) & (WebhookMessage.id < after[1]))
        )
    messages = list(
        session.scalars(
            query.order_by(WebhookMessage.created_at.desc(), WebhookMessage.id.desc()).limit(limit)
        )
    )
    attempts = attempts_by_message(session, [m.id for m in messages])
    return [(m, attempts[m.id]) for m in messages]


def attempts_by_message(
    session: Session, message_ids: Sequence[str]
) -> dict[str, list[WebhookAttempt]]:
    """Each message's attempts in the order they were made."""
    attempts: dict[str, list[WebhookAttempt]] = {message_id: [] for message_id in message_ids}
    if message_ids:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id.in_(list(message_ids)))
            .order_by(WebhookAttempt.message_id, WebhookAttempt.number)
        ):
            attempts[attempt.message_id].append(attempt)
    return attempts
