"""Bearer API key -> the calling user."""

from __future__ import annotations

from flask import request

from api.request_scope import db
from shared.errors import AuthenticationError
from shared.models import User
from shared.repositories.api_keys import authenticate


def current_user() -> User:
    """The user whose key is in `Authorization: Bearer <key>`, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError(
            "Missing API key. Send it as 'Authorization: Bearer <key>' "
            "(create one with `promptq keys create <user>`)."
        )
    return authenticate(db(), key.strip())
