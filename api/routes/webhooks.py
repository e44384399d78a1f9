"""The caller's webhook endpoints under /v1/webhooks: register, list, read, change, delete and
rotate the signing secret. (Delivery and signing are the worker's.)"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_user
from api.request_scope import db, parse_body, path_id
from api.schemas_admin import (
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from shared.models import WebhookEndpoint
from shared.repositories.webhook_endpoints import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    update_endpoint,
)
from shared.settings import get_settings

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
TAGS = ["webhooks"]


def _json(endpoint: WebhookEndpoint) -> Response:
    return jsonify(WebhookOut.model_validate(endpoint).model_dump(mode="json"))


def _json_with_secret(endpoint: WebhookEndpoint) -> Response:
    return jsonify(WebhookWithSecret.model_validate(endpoint).model_dump(mode="json"))


def _own(endpoint_id: str) -> WebhookEndpoint:
    user = current_user()
    return get_endpoint(db(), path_id(endpoint_id, "webhook endpoint"), user.id)


@bp.post("")
@openapi.operation(
    summary="Register a webhook endpoint (its secret is shown once)",
    request=WebhookCreate,
    responses={201: WebhookWithSecret},
    errors=[409],
    tags=TAGS,
)
def create_webhook() -> tuple[Response, int]:
    """A user has a capped number of endpoints (409 beyond). The secret signs deliveries
    (Standard Webhooks); it is shown only in this answer."""
    user = current_user()
    body = parse_body(WebhookCreate)
    session = db()
    endpoint = create_endpoint(
        session,
        user.id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    session.commit()
    return _json_with_secret(endpoint), 201


@bp.get("")
@openapi.operation(summary="List your webhook endpoints", responses={200: WebhookList}, tags=TAGS)
def list_webhooks() -> Response:
    user = current_user()
    endpoints = WebhookList(
        data=[WebhookOut.model_validate(e) for e in list_endpoints(db(), user.id)]
    )
    return jsonify(endpoints.model_dump(mode="json"))


@bp.get("/<endpoint_id>")
@openapi.operation(summary="Get a webhook endpoint", responses={200: WebhookOut}, tags=TAGS)
def get_webhook(endpoint_id: str) -> Response:
    return _json(_own(endpoint_id))


@bp.patch("/<endpoint_id>")
@openapi.operation(
    summary="Change a webhook endpoint",
    request=WebhookUpdate,
    responses={200: WebhookOut},
    tags=TAGS,
)
def update_webhook(endpoint_id: str) -> Response:
    """Fields left out are kept; description null clears it; enabling clears disabled_reason."""
    endpoint = _own(endpoint_id)
    body = parse_body(WebhookUpdate)
    session = db()
    update_endpoint(session, endpoint, body.changes())
    session.commit()
    return _json(endpoint)


@bp.delete("/<endpoint_id>")
@openapi.operation(summary="Delete a webhook endpoint", responses={204: None}, tags=TAGS)
def delete_webhook(endpoint_id: str) -> tuple[str, int]:
    endpoint = _own(endpoint_id)
    session = db()
    delete_endpoint(session, endpoint)
    session.commit()
    return "", 204


@bp.post("/<endpoint_id>/rotate-secret")
@openapi.operation(
    summary="Rotate a webhook endpoint's secret (the new one is shown once)",
    responses={200: WebhookWithSecret},
    tags=TAGS,
)
def rotate_webhook_secret(endpoint_id: str) -> Response:
    """The old secret keeps signing too until previous_secret_expires_at, so receivers can
    switch without dropping a delivery."""
    endpoint = _own(endpoint_id)
    session = db()
    rotate_secret(session, endpoint, get_settings().webhook_secret_rotation_grace_s)
    session.commit()
    return _json_with_secret(endpoint)
