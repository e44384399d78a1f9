"""API keys: issue (plaintext returned once), list, revoke, change limits, and resolve a
presented key to its user."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import AuthenticationError, NotFoundError
from shared.input_safety.user_settings import InputSafetySettings
from shared.models import ApiKey, User

KEY_PREFIX = "pq_"
SETTABLE_FIELDS = frozenset({"rpm_limit", "tpm_limit", "expires_at"})
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
) -> IssuedKey:
    """Create a key for `user`; the plaintext exists only in the returned value."""
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
    return IssuedKey(key=key, plaintext=plaintext)


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


def revoke_key(session: Session, key: ApiKey) -> ApiKey:
    """Revoke the key from now on; revoking a revoked key keeps its first revocation time."""
    if key.revoked_at is None:
        key.revoked_at = func.now()
        session.flush()
        session.refresh(key)
    return key


def update_key(session: Session, key: ApiKey, changes: Mapping[str, object]) -> ApiKey:
    """Set the key's rate limits and expiry (None clears one); absent fields are kept."""
    unknown = set(changes) - SETTABLE_FIELDS
    if unknown:
        raise ValueError(f"not settable key fields: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(key, field, value)
    session.flush()
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
