"""/v1/callback-secret: the secret that signs deliveries to the caller's jobs' callback_url
(endpoints registered under /v1/webhooks have their own)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_key, current_user
from api.request_scope import db
from api.schemas.callback_secret import CallbackSecretOut
from shared.models import User
from shared.repositories.audit_log import by_key
from shared.repositories.users import rotate_callback_secret
from shared.settings import get_settings

bp = Blueprint("callback_secret", __name__, url_prefix="/v1/callback-secret")
TAGS = ["webhooks"]


def _json(user: User) -> Response:
    secret = CallbackSecretOut(
        secret=user.callback_secret,
        previous_secret_expires_at=user.callback_previous_secret_expires_at,
    )
    return jsonify(secret.model_dump(mode="json"))


@bp.get("")
@openapi.operation(
    summary="Get the secret that signs your jobs' callback_url deliveries",
    responses={200: CallbackSecretOut},
    tags=TAGS,
)
def get_callback_secret() -> Response:
    """Verify callback_url deliveries with it exactly as endpoint deliveries (see README)."""
    return _json(current_user())


@bp.post("/rotate")
@openapi.operation(
    summary="Rotate the callback secret (the old one signs too for a grace period)",
    responses={200: CallbackSecretOut},
    tags=TAGS,
)
def rotate() -> Response:
    session = db()
    user = rotate_callback_secret(
        session,
        current_user(),
        get_settings().webhook_secret_rotation_grace_s,
        actor=by_key(current_key().id),
    )
    session.commit()
    return _json(user)
