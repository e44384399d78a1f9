"""Bearer API key -> the calling user and key; the admin key from settings -> the admin API.

A presented key is looked up in PostgreSQL once per KEY_CACHE_S per API process, not on every
request: revoking a key, its expiry and changes to its limits take effect within that bound
(at most 5 s) in every process, and at once in the process that made the change. A key that
reaches its expires_at while cached is refused from that moment, since the cache keeps it.
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from flask import Blueprint, g, request

from api.request_scope import db
from shared.db import retry_if_stale
from shared.errors import AuthenticationError, ForbiddenError
from shared.input_safety.user_settings import NONE, InputSafetySettings
from shared.models import User
from shared.repositories.api_keys import INVALID_KEY, authenticate, hash_key
from shared.settings import get_settings


@dataclass(frozen=True)
class CallerKey:
    """What a request needs of its API key, detached from any session."""

    id: uuid.UUID
    user_id: uuid.UUID
    rpm_limit: int | None
    tpm_limit: int | None
    expires_at: datetime | None
    # The owner's, read in the key's statement: a change reaches other processes within
    # KEY_CACHE_S, like a key's limits.
    input_safety: InputSafetySettings = NONE


@dataclass(frozen=True)
class _Cached:
    key: CallerKey
    until: float  # time.monotonic() after which the key is looked up again


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def _bearer() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip()
    if g.get("accepts_x_api_key") and request.headers.get("X-Api-Key", "").strip():
        return request.headers["X-Api-Key"].strip()
    raise AuthenticationError(
        "Missing API key. Send it as 'Authorization: Bearer <key>'"
        + (" or 'X-Api-Key: <key>'" if g.get("accepts_x_api_key") else "")
        + " (create one with `promptq keys create <user>`)."
    )


def accept_x_api_key(bp: Blueprint) -> None:
    """Let `bp`'s routes take the key in Anthropic's `X-Api-Key` header too, as its SDK sends
    it; promptq's own API takes the Bearer form only."""

    @bp.before_request
    def _accept() -> None:
        g.accepts_x_api_key = True


def _look_up(digest: str, plaintext: str) -> CallerKey:
    session = db()
    found = retry_if_stale(session, lambda: authenticate(session, plaintext))
    row = found.key
    key = CallerKey(
        id=row.id,
        user_id=row.user_id,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        expires_at=row.expires_at,
        input_safety=found.input_safety,
    )
    with _cache_lock:
        _cache[digest] = _Cached(key, time.monotonic() + get_settings().key_cache_s)
    return key


def current_key() -> CallerKey:
    """The live API key in `Authorization: Bearer <key>`, or a 401. Cached for the request."""
    if "api_key" not in g:
        plaintext = _bearer()
        digest = hash_key(plaintext)
        cached = _cache.get(digest)
        if cached is not None and cached.until > time.monotonic():
            key = cached.key
        else:
            key = _look_up(digest, plaintext)
        if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
            raise AuthenticationError(INVALID_KEY)
        g.api_key = key
        structlog.contextvars.bind_contextvars(user_id=str(key.user_id))
    return g.api_key


def forget_key(key_hash: str) -> None:
    """Drop a key from this process's cache (it was revoked or changed here)."""
    with _cache_lock:
        _cache.pop(key_hash, None)


def forget_all_keys() -> None:
    """Empty this process's key cache."""
    with _cache_lock:
        _cache.clear()


def current_user() -> User:
    """The owner of the request's API key."""
    key = current_key()
    user = db().get(User, key.user_id)
    assert user is not None  # the key's foreign key guarantees it
    return user


def require_admin() -> None:
    """Allow the request only with the operator's ADMIN_API_KEY."""
    admin_key = get_settings().admin_api_key
    presented = _bearer()
    if not admin_key:
        raise ForbiddenError("The admin API is disabled: set ADMIN_API_KEY to enable it.")
    if not hmac.compare_digest(presented.encode(), admin_key.encode()):
        raise AuthenticationError("The admin API needs the operator's ADMIN_API_KEY.")
