"""The caller's webhook endpoints under /v1/webhooks: register, list, read, change, delete,
rotate the signing secret, send a test ping, and see and retry deliveries. (Sending is the
worker's.)"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_key, current_user
from api.cursor import decode_cursor, encode_cursor
from api.locations import located
from api.request_scope import db, parse_body, parse_query, path_id
from api.schemas.webhooks import (
    DeliveryAttemptOut,
    DeliveryList,
    DeliveryListQuery,
    DeliveryOut,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from shared import outbox
from shared.errors import DeliveryInProgressError, NotFoundError, WebhookDisabledError
from shared.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from shared.repositories.audit_log import by_key
from shared.repositories.webhook_deliveries import (
    attempts_by_message,
    get_message,
    list_deliveries,
)
from shared.repositories.webhook_dispatch import retry_now
from shared.repositories.webhook_endpoints import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    update_endpoint,
)
from shared.repositories.webhook_messages import enqueue_ping
from shared.settings import get_settings
from shared.ssrf import TargetPolicy, check_target_url

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
TAGS = ["webhooks"]


def _json(endpoint: WebhookEndpoint) -> Response:
    return jsonify(WebhookOut.model_validate(endpoint).model_dump(mode="json"))


def _json_with_secret(endpoint: WebhookEndpoint) -> Response:
    return jsonify(WebhookWithSecret.model_validate(endpoint).model_dump(mode="json"))


def _own(endpoint_id: str) -> WebhookEndpoint:
    user = current_user()
    return get_endpoint(db(), path_id(endpoint_id, "webhook endpoint"), user.id)


def _public_target(url: str) -> None:
    """Refuse a URL that is, or resolves to, an address promptq must not call (422)."""
    check_target_url(url, TargetPolicy.from_settings(get_settings()))


def _delivery(message: WebhookMessage, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=message.id,
        event_type=message.event_type,
        job_id=message.job_id,
        status=message.status,
        attempt_count=message.attempt_count,
        next_attempt_at=message.next_attempt_at,
        last_error=message.last_error,
        created_at=message.created_at,
        finished_at=message.finished_at,
        attempts=[DeliveryAttemptOut.model_validate(a) for a in attempts],
    )


@bp.post("")
@openapi.operation(
    summary="Register a webhook endpoint (its secret is shown once)",
    request=WebhookCreate,
    responses={201: WebhookWithSecret},
    errors=[409, 422],
    tags=TAGS,
)
def create_webhook() -> tuple[Response, int]:
    """A user has a capped number of endpoints (409 beyond). The secret signs deliveries
    (Standard Webhooks); it is shown only in this answer."""
    user = current_user()
    body = parse_body(WebhookCreate)
    _public_target(body.url)
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
    response = _json_with_secret(endpoint)
    return located(response, "webhooks.get_webhook", endpoint_id=str(endpoint.id)), 201


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
    errors=[422],
    tags=TAGS,
)
def update_webhook(endpoint_id: str) -> Response:
    """Fields left out are kept; description null clears it; enabling clears disabled_reason."""
    endpoint = _own(endpoint_id)
    body = parse_body(WebhookUpdate)
    if body.url is not None:
        _public_target(body.url)
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
    rotate_secret(
        session,
        endpoint,
        get_settings().webhook_secret_rotation_grace_s,
        actor=by_key(current_key().id),
    )
    session.commit()
    return _json_with_secret(endpoint)


@bp.post("/<endpoint_id>/test")
@openapi.operation(
    summary="Send a test ping to a webhook endpoint", responses={202: DeliveryOut}, tags=TAGS
)
def send_test_ping(endpoint_id: str) -> tuple[Response, int]:
    """Queues a signed `ping` event for this endpoint whatever its event_types, and even when it
    is disabled; follow it under /deliveries."""
    endpoint = _own(endpoint_id)
    session = db()
    dispatch = enqueue_ping(session, endpoint)
    session.commit()
    outbox.publish_webhooks([dispatch])
    message = session.get(WebhookMessage, dispatch[0])
    assert message is not None
    return jsonify(_delivery(message, []).model_dump(mode="json")), 202


@bp.get("/<endpoint_id>/deliveries")
@openapi.operation(
    summary="List a webhook endpoint's deliveries with their attempts, newest first",
    query=DeliveryListQuery,
    responses={200: DeliveryList},
    tags=TAGS,
)
def list_endpoint_deliveries(endpoint_id: str) -> Response:
    endpoint = _own(endpoint_id)
    query = parse_query(DeliveryListQuery)
    after = None
    if query.cursor is not None:
        created_at, position = decode_cursor(query.cursor)
        after = (created_at, f"msg_{position.hex}")
    rows = list_deliveries(db(), endpoint.id, after, query.limit + 1, query.status)
    page = rows[: query.limit]
    last = page[-1][0] if page else None
    listing = DeliveryList(
        data=[_delivery(message, attempts) for message, attempts in page],
        next_cursor=(
            encode_cursor(last.created_at, uuid.UUID(hex=last.id.removeprefix("msg_")))
            if last is not None and len(rows) > query.limit
            else None
        ),
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.post("/<endpoint_id>/deliveries/<message_id>/retry")
@openapi.operation(
    summary="Send a delivery again now",
    responses={202: DeliveryOut},
    errors=[409],
    tags=TAGS,
)
def retry_delivery(endpoint_id: str, message_id: str) -> tuple[Response, int]:
    """A finished message gets another attempt (the same webhook-id, so receivers can
    dedupe); a pending one is sent now instead of at its scheduled time. 409 while an attempt
    is in progress, or when the endpoint is disabled (enable it first)."""
    endpoint = _own(endpoint_id)
    session = db()
    message = get_message(session, endpoint.id, message_id)
    if message is None:
        raise NotFoundError(f"No delivery with id {message_id!r} for this webhook endpoint.")
    if message.status == MessageStatus.DELIVERING:
        raise DeliveryInProgressError(
            f"Delivery {message_id} is being attempted right now; retry after it finishes."
        )
    if not endpoint.enabled:
        raise WebhookDisabledError(
            f"Webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason or 'by you'}); "
            "set enabled to true first."
        )
    dispatch = retry_now(session, message)
    session.commit()
    outbox.publish_webhooks([dispatch])
    attempts = attempts_by_message(session, [message.id])[message.id]
    return jsonify(_delivery(message, attempts).model_dump(mode="json")), 202
