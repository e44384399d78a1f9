"""The audit log: record an admin or key action in the caller's transaction, and page the log
newest first.

The repositories that perform the actions (users.py, api_keys.py, webhook_endpoints.py) record
them, so every way in (the admin API, a user's own key, the `promptq` CLI) is audited alike.
Only the fields an action changed are recorded, as plain JSON values; secrets, keys and their
hashes never are: callers name the fields they record, and none of those is one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from shared.models import AuditEvent
from shared.money import usd


@dataclass(frozen=True)
class Actor:
    """Who performed an action: the operator through the admin API or the CLI, or a user
    through one of their API keys."""

    type: str
    key_id: uuid.UUID | None = None


ADMIN = Actor("admin")
CLI = Actor("cli")

# What the log records, and what it records it about.
USER_CREATED = "user.created"
BUDGET_CHANGED = "user.budget_changed"
SHARE_CHANGED = "user.share_changed"
INPUT_SAFETY_CHANGED = "user.input_safety_changed"
TEAM_CHANGED = "user.team_changed"
TEAM_CREATED = "team.created"
TEAM_BUDGET_CHANGED = "team.budget_changed"
CALLBACK_SECRET_ROTATED = "user.callback_secret_rotated"
KEY_ISSUED = "key.issued"
KEY_UPDATED = "key.updated"
KEY_REVOKED = "key.revoked"
WEBHOOK_SECRET_ROTATED = "webhook_endpoint.secret_rotated"
WEBHOOK_CREATED = "webhook_endpoint.created"
WEBHOOK_UPDATED = "webhook_endpoint.updated"
WEBHOOK_DELETED = "webhook_endpoint.deleted"
ACTIONS: tuple[str, ...] = (
    USER_CREATED,
    BUDGET_CHANGED,
    SHARE_CHANGED,
    INPUT_SAFETY_CHANGED,
    TEAM_CHANGED,
    TEAM_CREATED,
    TEAM_BUDGET_CHANGED,
    CALLBACK_SECRET_ROTATED,
    KEY_ISSUED,
    KEY_UPDATED,
    KEY_REVOKED,
    WEBHOOK_SECRET_ROTATED,
    WEBHOOK_CREATED,
    WEBHOOK_UPDATED,
    WEBHOOK_DELETED,
)
TARGET_TYPES: tuple[str, ...] = ("user", "api_key", "webhook_endpoint", "team")


def by_key(key_id: uuid.UUID) -> Actor:
    """A user acting on their own keys or secrets with the key `key_id`."""
    return Actor("api_key", key_id)


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    target_type: str | None = None
    target_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None


def plain(value: object) -> Any:
    """`value` as the log stores it: JSON, with dollars as exact decimal strings."""
    if isinstance(value, Decimal):
        return usd(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        # In UTC, so an unchanged instant given in another offset is no change.
        return value.astimezone(UTC).isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def snapshot(row: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of `row`, as the log stores them."""
    return {field: plain(getattr(row, field)) for field in fields}


def created(after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of a row that did not exist before: every field, from null."""
    return {field: {"before": None, "after": value} for field, value in after.items()}


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before", "after"}} for each field of `after` whose value differs."""
    return {
        field: {"before": before.get(field), "after": value}
        for field, value in after.items()
        if before.get(field) != value
    }


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: uuid.UUID,
    user_id: uuid.UUID | None,
    changes: Mapping[str, dict[str, Any]],
) -> None:
    """Add the row for an action to the caller's transaction (it commits with the action); an
    action that changed nothing records nothing."""
    if not changes:
        return
    event = AuditEvent(
        actor_type=actor.type,
        actor_key_id=actor.key_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        user_id=user_id,
        changes=dict(changes),
    )
    session.add(event)


def list_events(
    session: Session,
    filters: AuditFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditEvent]:
    """Rows newest first (ties broken by id), after the (created_at, id) position `after`;
    keyset pagination, so pages never skip or repeat a row."""
    query = select(AuditEvent)
    for column, value in (
        (AuditEvent.action, filters.action),
        (AuditEvent.target_type, filters.target_type),
        (AuditEvent.target_id, filters.target_id),
        (AuditEvent.user_id, filters.user_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(
            tuple_(AuditEvent.created_at, AuditEvent.id)
            < tuple_(literal(after[0]), literal(after[1]))
        )
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    return list(session.scalars(query))
