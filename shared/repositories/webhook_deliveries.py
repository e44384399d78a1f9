"""An endpoint's delivery log as the API shows it: its messages, newest first, each with its
attempts; and one message, locked, for the owner to act on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import WebhookAttempt, WebhookMessage


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
