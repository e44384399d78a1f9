"""What the webhook dispatcher publishes: pending messages whose attempt is due and that no
message in the broker will bring to a worker; and a message sent again now at its owner's
request. Callers publish what these return after the commit."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.models import MessageStatus, WebhookMessage
from shared.repositories.intervals import seconds
from shared.repositories.webhook_messages import Dispatch

# A message's publish time is its commit's start; its push into the queue comes this much later
# at most, as far as ordering the queue by publish time goes.
_PUSH_MARGIN_S = 5.0


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
    orphaned = published < func.now() - seconds(orphan_grace_s)
    if oldest_waiting is not None:
        # NULL (no such row, or that message is being delivered) orphans nothing this time.
        waiting_since = (
            select(WebhookMessage.dispatched_at)
            .where(WebhookMessage.id == oldest_waiting)
            .scalar_subquery()
        )
        orphaned &= published < waiting_since - seconds(_PUSH_MARGIN_S)
    due = (
        select(WebhookMessage.id)
        .where(
            WebhookMessage.status == MessageStatus.PENDING,
            WebhookMessage.next_attempt_at <= func.now(),
            published.is_(None) | (published < func.now() - seconds(redispatch_s)) | orphaned,
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
