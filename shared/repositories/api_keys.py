"""API keys: issue (plaintext returned once), list, revoke, change limits, and resolve a
presented key to its user. Issuing, revoking and changing a key are audited in the same
transaction (shared/repositories/audit_log.py), never with the key, its prefix or its hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import AuthenticationError, NotFoundError
from shared.input_safety.user_settings import InputSafetySettings
from shared.models import ApiKey, User
from shared.repositories import audit_log
from shared.repositories.audit_log import Actor

KEY_PREFIX = "pq_"
SETTABLE_FIELDS = frozenset({"rpm_limit", "tpm_limit", "expires_at"})
# What the audit log records of a new key.
_ISSUED_FIELDS = ("name", "expires_at", "rpm_limit", "tpm_limit")
INVALID_KEY = (
    "The API key is not valid (unknown, revoked or expired). "
    "Create one with `promptq keys create <user>`."
)


def hash_key(plaintext: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


def issue_key(
    session: Session,
    user: User,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    actor: Actor,
) -> IssuedKey:
    """Create a key for `user`, audited as `actor`'s; the plaintext exists only in the returned
    value."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user.id,
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        name=name,
        expires_at=expires_at,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
    )
    session.add(key)
    session.flush()
    session.refresh(key)
    _audit(session, actor, audit_log.KEY_ISSUED, key, audit_log.created(_snapshot(key)))
    return IssuedKey(key=key, plaintext=plaintext)


def _snapshot(key: ApiKey, fields: Iterable[str] = _ISSUED_FIELDS) -> dict[str, Any]:
    return audit_log.snapshot(key, fields)


def _audit(
    session: Session, actor: Actor, action: str, key: ApiKey, changes: dict[str, Any]
) -> None:
    audit_log.record(
        session,
        actor,
        action,
        target_type="api_key",
        target_id=key.id,
        user_id=key.user_id,
        changes=changes,
    )


def list_keys(session: Session, user_id: uuid.UUID) -> list[ApiKey]:
    """All of the user's keys, revoked and expired ones included, oldest first."""
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
        )
    )


def get_key(session: Session, key_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> ApiKey:
    """The key with this id; given `user_id`, someone else's key is as missing as an unknown one."""
    query = select(ApiKey).where(ApiKey.id == key_id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    key = session.scalars(query).one_or_none()
    if key is None:
        raise NotFoundError(f"No API key with id '{key_id}'.")
    return key


def revoke_key(session: Session, key: ApiKey, *, actor: Actor) -> ApiKey:
    """Revoke the key from now on, audited as `actor`'s; revoking a revoked key keeps its first
    revocation time and records nothing."""
    if key.revoked_at is None:
        key.revoked_at = func.now()
        session.flush()
        session.refresh(key)
        changes = audit_log.created(_snapshot(key, ("revoked_at",)))
        _audit(session, actor, audit_log.KEY_REVOKED, key, changes)
    return key


def update_key(
    session: Session, key: ApiKey, changes: Mapping[str, object], *, actor: Actor
) -> ApiKey:
    """Set the key's rate limits and expiry (None clears one); absent fields are kept. Audited
    when a field changes."""
    unknown = set(changes) - SETTABLE_FIELDS
    if unknown:
        raise ValueError(f"not settable key fields: {sorted(unknown)}")
    before = _snapshot(key, changes)
    for field, value in changes.items():
        setattr(key, field, value)
    session.flush()
    _audit(
        session,
        actor,
        audit_log.KEY_UPDATED,
        key,
        audit_log.changed(before, _snapshot(key, changes)),
    )
    return key


@dataclass(frozen=True)
class AuthenticatedKey:
    key: ApiKey
    input_safety: InputSafetySettings


def authenticate(session: Session, plaintext: str) -> AuthenticatedKey:
    """The live (not revoked, not expired) key and its owner's input-safety settings (one
    statement), or AuthenticationError."""
    row = session.execute(
        select(
            ApiKey,
            User.scrub_pii,
            User.restore_pii,
            User.keep_original_prompts,
            User.injection_screening,
        )
        .join(User, User.id == ApiKey.user_id)
        .where(
            ApiKey.key_hash == hash_key(plaintext),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
        )
    ).one_or_none()
    if row is None:
        raise AuthenticationError(INVALID_KEY)
    key, scrub, restore, keep, screening = row
    return AuthenticatedKey(key, InputSafetySettings(scrub, restore, keep, screening))
