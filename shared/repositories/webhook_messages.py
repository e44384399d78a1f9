"""Webhook messages, created in the transaction that makes a job final or settles a batch (so
an event is never lost between the commit and the publish), or on the owner's request (ping).
The caller publishes what these return after the commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session

from shared.models import Batch, Job, MessageStatus, WebhookEndpoint, WebhookMessage
from shared.repositories.budget_alerts import Alert
from shared.webhook_events import (
    BATCH_EVENTS,
    BUDGET_THRESHOLD,
    PING,
    batch_event_body,
    budget_event_body,
    job_event_body,
    job_event_type,
    ping_body,
)

# (message id, attempts already made): what a delivery task is published with.
Dispatch = tuple[str, int]


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


def enqueue_budget_alerts(session: Session, alerts: Sequence[Alert]) -> list[Dispatch]:
    """Create the messages announcing `alerts`: one per enabled endpoint of the user subscribed
    to budget.threshold, one INSERT ... SELECT per alert (a budget has no callback_url). Call it
    in the transaction that recorded them; publish what it returns after the commit."""
    messages = WebhookMessage.__table__
    endpoints = WebhookEndpoint.__table__
    columns = [
        *("id", "user_id", "endpoint_id", "event_type", "body", "status"),
        *("next_attempt_at", "dispatched_at"),
    ]
    dispatches: list[Dispatch] = []
    for alert in alerts:
        # new_message_id()'s shape, made per endpoint by the database.
        message_id = literal("msg_") + func.replace(cast(func.gen_random_uuid(), String), "-", "")
        targets = select(
            message_id,
            endpoints.c.user_id,
            endpoints.c.id,
            literal(BUDGET_THRESHOLD, String),
            literal(budget_event_body(alert), String),
            literal(MessageStatus.PENDING.value, String),
            func.now(),
            func.now(),
        ).where(
            endpoints.c.user_id == alert.user_id,
            endpoints.c.enabled.is_(True),
            endpoints.c.event_types.contains([BUDGET_THRESHOLD]),
        )
        inserted = session.execute(
            messages.insert().from_select(columns, targets).returning(messages.c.id)
        )
        dispatches.extend((message_id, 0) for message_id in inserted.scalars())
    return dispatches


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
