"""Users: create, find, list, set their budgets, fair share and input-safety settings, and
rotate their callback secret; each change is audited in its own transaction
(shared/repositories/audit_log.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import AlreadyExistsError, NotFoundError
from shared.input_safety.pii_vault import require_key
from shared.models import ApiKey, User
from shared.repositories import audit_log
from shared.repositories.audit_log import Actor
from shared.repositories.budgets import open_counter
from shared.webhook_secrets import new_webhook_secret

BUDGET_FIELDS = frozenset({"daily_budget_usd", "monthly_budget_usd"})
SHARE_FIELDS = frozenset({"weight", "max_concurrency"})
TEAM_FIELDS = frozenset({"team_id"})
# What the audit log records of a new user (never its callback secret).
_CREATED_FIELDS = ("name", "daily_budget_usd", "monthly_budget_usd", "weight", "max_concurrency")
_ROTATION_FIELDS = ("callback_previous_secret_expires_at",)
INPUT_SAFETY_FIELDS = frozenset(
    {"scrub_pii", "restore_pii", "keep_original_prompts", "injection_screening"}
)


def create_user(
    session: Session,
    name: str,
    *,
    daily_budget_usd: Decimal | None = None,
    monthly_budget_usd: Decimal | None = None,
    actor: Actor,
) -> User:
    """Add a user named `name`, audited as `actor`'s; AlreadyExistsError if the name is taken."""
    user = User(name=name, daily_budget_usd=daily_budget_usd, monthly_budget_usd=monthly_budget_usd)
    try:
        # The unique index decides, so two concurrent creates cannot both win.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise AlreadyExistsError(f"A user named {name!r} already exists.") from None
    open_counter(session, user.id)
    session.refresh(user)
    _audit(session, actor, audit_log.USER_CREATED, user, audit_log.created(_snapshot(user)))
    return user


def _snapshot(user: User, fields: Iterable[str] = _CREATED_FIELDS) -> dict[str, Any]:
    return audit_log.snapshot(user, fields)


def _audit(
    session: Session, actor: Actor, action: str, user: User, changes: dict[str, Any]
) -> None:
    audit_log.record(
        session,
        actor,
        action,
        target_type="user",
        target_id=user.id,
        user_id=user.id,
        changes=changes,
    )


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"No user with id '{user_id}'.")
    return user


def get_user_by_name(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise NotFoundError(f"No user named {name!r}.")
    return user


def list_users(session: Session, *, limit: int | None = None, offset: int = 0) -> list[User]:
    """Users in creation order (id breaks ties, so pages never overlap); all without a limit."""
    query = select(User).order_by(User.created_at, User.id).offset(offset)
    return list(session.scalars(query if limit is None else query.limit(limit)))


def set_budgets(
    session: Session, user: User, changes: Mapping[str, Decimal | None], *, actor: Actor
) -> User:
    """Set the given budgets (None clears one: no ceiling); absent ones are kept. Audited when
    a budget changes."""
    return _set(session, user, changes, BUDGET_FIELDS, audit_log.BUDGET_CHANGED, actor)


def set_share(
    session: Session, user: User, changes: Mapping[str, int | None], *, actor: Actor
) -> User:
    """Set the user's fair-share weight and/or concurrency cap (None clears the cap); absent
    ones are kept. Audited when either changes."""
    if changes.get("weight", 1) is None:
        raise ValueError("weight cannot be cleared")
    return _set(session, user, changes, SHARE_FIELDS, audit_log.SHARE_CHANGED, actor)


def set_team(session: Session, user: User, team_id: uuid.UUID | None, *, actor: Actor) -> User:
    """Put the user in the team `team_id` (None: in no team). Only admissions from now on are
    held against the new team: a job already admitted stays its old team's until it settles.
    Audited when the team changes."""
    return _set(session, user, {"team_id": team_id}, TEAM_FIELDS, audit_log.TEAM_CHANGED, actor)


def _set(
    session: Session,
    user: User,
    changes: Mapping[str, object],
    allowed: frozenset[str],
    action: str,
    actor: Actor,
) -> User:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not {action} fields: {sorted(unknown)}")
    before = _snapshot(user, changes)
    for field, value in changes.items():
        setattr(user, field, value)
    session.flush()
    _audit(session, actor, action, user, audit_log.changed(before, _snapshot(user, changes)))
    return user


def set_input_safety(
    session: Session, user: User, changes: Mapping[str, object], vault_key: str, *, actor: Actor
) -> list[str]:
    """Set the given input-safety settings; the hashes of the user's keys, whose cached copies
    (with the settings read alongside) are now stale. Restoring PII without keeping originals
    needs the operator's PII_VAULT_KEY (PiiRestoreUnavailableError). Audited when one changes."""
    _set(session, user, changes, INPUT_SAFETY_FIELDS, audit_log.INPUT_SAFETY_CHANGED, actor)
    if user.restore_pii and not user.keep_original_prompts:
        require_key(vault_key)
    return list(session.scalars(select(ApiKey.key_hash).where(ApiKey.user_id == user.id)))


def rotate_callback_secret(session: Session, user: User, grace_s: int, *, actor: Actor) -> User:
    """A new secret for the user's callback_url deliveries; the current one keeps signing for
    `grace_s` seconds, as endpoint rotations do. Audited without either secret."""
    before = _snapshot(user, _ROTATION_FIELDS)
    user.callback_previous_secret = user.callback_secret
    user.callback_previous_secret_expires_at = func.now() + timedelta(seconds=grace_s)
    user.callback_secret = new_webhook_secret()
    session.flush()
    session.refresh(user)
    changes = audit_log.changed(before, _snapshot(user, _ROTATION_FIELDS))
    _audit(session, actor, audit_log.CALLBACK_SECRET_ROTATED, user, changes)
    return user
