"""Bearer API key -> the calling user and key; the admin key from settings -> the admin API."""

from __future__ import annotations

import hmac

from flask import g, request

from api.request_scope import db
from shared.errors import AuthenticationError, ForbiddenError
from shared.models import ApiKey, User
from shared.repositories.api_keys import authenticate
from shared.settings import get_settings


def _bearer() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError(
            "Missing API key. Send it as 'Authorization: Bearer <key>' "
            "(create one with `promptq keys create <user>`)."
        )
    return key.strip()


def current_key() -> ApiKey:
    """The live API key in `Authorization: Bearer <key>`, or a 401. Cached for the request."""
    if "api_key" not in g:
        g.api_key = authenticate(db(), _bearer())
    return g.api_key


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
