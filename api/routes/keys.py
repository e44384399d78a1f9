"""The caller's own API keys: list (GET /v1/keys), create (POST) and revoke (DELETE /<id>)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_key, current_user, forget_key
from api.request_scope import db, parse_body, path_id
from api.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyOut
from shared.errors import ValidationError
from shared.repositories.api_keys import get_key, issue_key, list_keys, revoke_key
from shared.repositories.audit_log import by_key

bp = Blueprint("keys", __name__, url_prefix="/v1/keys")


@bp.get("")
@openapi.operation(summary="List your API keys", responses={200: KeyList}, tags=["keys"])
def list_own_keys() -> Response:
    """Revoked and expired keys included; never a key's hash or plaintext."""
    user = current_user()
    keys = KeyList(data=[KeyOut.model_validate(k) for k in list_keys(db(), user.id)])
    return jsonify(keys.model_dump(mode="json"))


@bp.post("")
@openapi.operation(
    summary="Create an API key (its plaintext is shown once)",
    request=KeyCreate,
    responses={201: KeyCreated},
    tags=["keys"],
)
def create_own_key() -> tuple[Response, int]:
    """A key made with a key never outlives or outruns it: it inherits the caller's rate
    limits, and its expiry (by default the caller's) cannot be later than the caller's."""
    caller = current_key()
    user = current_user()
    body = parse_body(KeyCreate)
    expires_at = body.expiry()
    if caller.expires_at is not None:
        if expires_at is None:
            expires_at = caller.expires_at
        elif expires_at > caller.expires_at:
            raise ValidationError(
                "The new key cannot expire after the key making the request "
                f"({caller.expires_at.isoformat()}).",
                details=[{"field": "expires_at", "problem": "later than the caller key's expiry"}],
            )
    session = db()
    issued = issue_key(
        session,
        user,
        name=body.name,
        expires_at=expires_at,
        rpm_limit=caller.rpm_limit,
        tpm_limit=caller.tpm_limit,
        actor=by_key(caller.id),
    )
    session.commit()
    created = KeyCreated(**KeyOut.model_validate(issued.key).model_dump(), key=issued.plaintext)
    return jsonify(created.model_dump(mode="json")), 201


@bp.delete("/<key_id>")
@openapi.operation(summary="Revoke one of your API keys", responses={200: KeyOut}, tags=["keys"])
def revoke_own_key(key_id: str) -> Response:
    """It is refused from the next request on in the API process that revoked it, and within
    KEY_CACHE_S (at most 5 s) in every other; revoking it again changes nothing."""
    user = current_user()
    session = db()
    key = revoke_key(
        session,
        get_key(session, path_id(key_id, "API key"), user_id=user.id),
        actor=by_key(current_key().id),
    )
    session.commit()
    forget_key(key.key_hash)
    return jsonify(KeyOut.model_validate(key).model_dump(mode="json"))
