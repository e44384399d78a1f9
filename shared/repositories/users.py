"""Users: create, find, list, set their budgets and input-safety settings, and rotate their
callback secret."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import AlreadyExistsError, NotFoundError
from shared.input_safety.pii_vault import require_key
from shared.models import ApiKey, User
from shared.repositories.budgets import open_counter
from shared.webhook_secrets import new_webhook_secret

BUDGET_FIELDS = frozenset({"daily_budget_usd", "monthly_budget_usd"})
INPUT_SAFETY_FIELDS = frozenset(
    {"scrub_pii", "restore_pii", "keep_original_prompts", "injection_screening"}
)


def create_user(
    session: Session,
    name: str,
    *,
    daily_budget_usd: Decimal | None = None,
    monthly_budget_usd: Decimal | None = None,
) -> User:
    """Add a user named `name`; AlreadyExistsError if the name is taken."""
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
    return user


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


def set_budgets(session: Session, user: User, changes: Mapping[str, Decimal | None]) -> User:
    """Set the given budgets (None clears one: no ceiling); absent ones are kept."""
    unknown = set(changes) - BUDGET_FIELDS
    if unknown:
        raise ValueError(f"not budget fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(user, field, value)
    session.flush()
    return user


def set_input_safety(
    session: Session, user: User, changes: Mapping[str, object], vault_key: str
) -> list[str]:
    """Set the given input-safety settings; the hashes of the user's keys, whose cached copies
    (with the settings read alongside) are now stale. Restoring PII without keeping originals
    needs the operator's PII_VAULT_KEY (PiiRestoreUnavailableError)."""
    unknown = set(changes) - INPUT_SAFETY_FIELDS
    if unknown:
        raise ValueError(f"not input-safety fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(user, field, value)
    if user.restore_pii and not user.keep_original_prompts:
        require_key(vault_key)
    session.flush()
    return list(session.scalars(select(ApiKey.key_hash).where(ApiKey.user_id == user.id)))


def rotate_callback_secret(session: Session, user: User, grace_s: int) -> User:
    """A new secret for the user's callback_url deliveries; the current one keeps signing for
    `grace_s` seconds, as endpoint rotations do."""
    user.callback_previous_secret = user.callback_secret
    user.callback_previous_secret_expires_at = func.now() + timedelta(seconds=grace_s)
    user.callback_secret = new_webhook_secret()
    session.flush()
    session.refresh(user)
    return user
