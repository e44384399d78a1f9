"""Webhook endpoints a user registers: create, find, change, delete and rotate the secret (each
change is audited: shared/repositories/audit_log.py; an endpoint's URL decides where signed
events go)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import LimitReachedError, NotFoundError
from shared.models import User, WebhookEndpoint
from shared.repositories import audit_log
from shared.repositories.audit_log import Actor
from shared.webhook_secrets import new_webhook_secret

# Each endpoint costs a delivery per event, so the count is capped. Going over is a 409: the
# request is well-formed, it collides with the endpoints the user already has.
MAX_ENDPOINTS_PER_USER = 20
EDITABLE_FIELDS = frozenset({"url", "event_types", "description", "enabled"})
_ROTATION_FIELDS = ("previous_secret_expires_at",)
# What the audit log records of an endpoint (never its secrets).
_AUDITED_FIELDS = ("url", "event_types", "description", "enabled")


def create_endpoint(
    session: Session,
    user_id: uuid.UUID,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    enabled: bool,
    actor: Actor,
) -> WebhookEndpoint:
    """Register an endpoint with a fresh secret; LimitReachedError beyond the per-user cap.
    Audited as `actor`'s, without the secret."""
    # Locking the user row serializes concurrent creates, so the cap holds under races.
    session.execute(select(User.id).where(User.id == user_id).with_for_update())
    count = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
    )
    if count is not None and count >= MAX_ENDPOINTS_PER_USER:
        raise LimitReachedError(
            f"You already have {MAX_ENDPOINTS_PER_USER} webhook endpoints, the most allowed. "
            "Delete one, or widen an existing endpoint's event_types.",
            details={"limit": MAX_ENDPOINTS_PER_USER},
        )
    endpoint = WebhookEndpoint(
        user_id=user_id,
        url=url,
        event_types=list(event_types),
        description=description,
        enabled=enabled,
        secret=new_webhook_secret(),
    )
    session.add(endpoint)
    session.flush()
    session.refresh(endpoint)
    _audit(
        session, actor, audit_log.WEBHOOK_CREATED, endpoint, audit_log.created(_fields(endpoint))
    )
    return endpoint


def list_endpoints(session: Session, user_id: uuid.UUID) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == user_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, endpoint_id: uuid.UUID, user_id: uuid.UUID) -> WebhookEndpoint:
    """The user's endpoint; someone else's is indistinguishable from a missing one."""
    endpoint = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id
        )
    ).one_or_none()
    if endpoint is None:
        raise NotFoundError(f"No webhook endpoint with id '{endpoint_id}'.")
    return endpoint


def update_endpoint(
    session: Session, endpoint: WebhookEndpoint, changes: Mapping[str, object], *, actor: Actor
) -> WebhookEndpoint:
    """Apply the given fields; enabling an endpoint clears why delivery had disabled it and its
    run of failures. Audited when a field changes."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable endpoint fields: {sorted(unknown)}")
    before = _fields(endpoint)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    if changes.get("enabled") is True:
        # A fresh start: the failing run that disabled it must not disable it again at once.
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    session.flush()
    session.refresh(endpoint)
    _audit(
        session,
        actor,
        audit_log.WEBHOOK_UPDATED,
        endpoint,
        audit_log.changed(before, _fields(endpoint)),
    )
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    """Delete the endpoint; audited with what it was."""
    gone = {field: {"before": value, "after": None} for field, value in _fields(endpoint).items()}
    _audit(session, actor, audit_log.WEBHOOK_DELETED, endpoint, gone)
    session.delete(endpoint)
    session.flush()


def _fields(endpoint: WebhookEndpoint) -> dict[str, object]:
    return audit_log.snapshot(endpoint, _AUDITED_FIELDS)


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    endpoint: WebhookEndpoint,
    changes: Mapping[str, dict[str, object]],
) -> None:
    audit_log.record(
        session,
        actor,
        action,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        user_id=endpoint.user_id,
        changes=changes,
    )


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, grace_s: int, *, actor: Actor
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one keeps signing for `grace_s` seconds.
    Audited as `actor`'s, without either secret.

    A second rotation within the grace period drops the oldest secret: only two ever sign.
    """
    before = audit_log.snapshot(endpoint, _ROTATION_FIELDS)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = func.now() + timedelta(seconds=grace_s)
    endpoint.secret = new_webhook_secret()
    session.flush()
    session.refresh(endpoint)
    changes = audit_log.changed(before, audit_log.snapshot(endpoint, _ROTATION_FIELDS))
    _audit(session, actor, audit_log.WEBHOOK_SECRET_ROTATED, endpoint, changes)
    return endpoint
