"""API keys: issue (plaintext returned once), and resolve a presented key to its user."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import AuthenticationError
from shared.models import ApiKey, User

KEY_PREFIX = "pq_"


def hash_key(plaintext: str) -> str:
    """SHA-256 is enough: keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


def issue_key(session: Session, user: User) -> IssuedKey:
    """Create a key for `user`; the plaintext exists only in the returned value."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, prefix=plaintext[:10], key_hash=hash_key(plaintext))
    session.add(key)
    session.flush()
    return IssuedKey(key=key, plaintext=plaintext)


def authenticate(session: Session, plaintext: str) -> ApiKey:
    """The live (not revoked, not expired) key, or AuthenticationError."""
    key = session.scalars(
        select(ApiKey).where(
            ApiKey.key_hash == hash_key(plaintext),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
        )
    ).one_or_none()
    if key is None:
        raise AuthenticationError(
            "The API key is not valid (unknown, revoked or expired). "
            "Create one with `promptq keys create <user>`."
        )
    return key
