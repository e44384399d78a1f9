"""The caller's webhook endpoints (/v1/webhooks): storage, secrets shown once, rotation."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, get_args

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from api.schemas.webhooks import EventType
from shared.db import transaction
from shared.models import WebhookEndpoint
from shared.repositories.webhook_endpoints import MAX_ENDPOINTS_PER_USER
from shared.settings import get_settings
from shared.webhook_events import EVENT_TYPES
from tests.api.job_helpers import error_of
from tests.conftest import Account

VALID: dict[str, Any] = {"url": "https://hooks.example.com/promptq", "event_types": ["job.failed"]}
FIELDS = {
    "id",
    "object",
    "url",
    "description",
    "event_types",
    "enabled",
    "disabled_reason",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
}


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.key}"}


def _create(client: FlaskClient, account: Account, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={**VALID, **body}, headers=_auth(account))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _signs_and_verifies(secret: str) -> bool:
    """The official Standard Webhooks library accepts the secret and round-trips a signature."""
    hook = Webhook(secret)
    now = datetime.now().astimezone()
    signature = hook.sign("msg_1", now, '{"type":"job.failed"}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return hook.verify('{"type":"job.failed"}', headers) == {"type": "job.failed"}


def test_create_shows_the_secret_once(client: FlaskClient, alice: Account) -> None:
    """POST answers 201 with a Standard Webhooks secret; reads never show it again."""
    created = _create(
        client, alice, event_types=["job.cancelled", "job.succeeded", "job.cancelled"]
    )
    assert set(created) == FIELDS | {"secret"}
    assert created["event_types"] == ["job.succeeded", "job.cancelled"]
    assert (created["enabled"], created["description"], created["disabled_reason"]) == (
        True,
        None,
        None,
    )
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert _signs_and_verifies(secret)
    one = client.get(f"/v1/webhooks/{created['id']}", headers=_auth(alice))
    assert one.status_code == 200 and set(one.get_json()) == FIELDS
    listed = client.get("/v1/webhooks", headers=_auth(alice))
    assert [e["id"] for e in listed.get_json()["data"]] == [created["id"]]
    assert secret not in one.get_data(as_text=True) + listed.get_data(as_text=True)


def test_secrets_differ(client: FlaskClient, alice: Account) -> None:
    """Every endpoint gets its own random secret."""
    assert _create(client, alice)["secret"] != _create(client, alice)["secret"]


def test_patch_changes_fields(client: FlaskClient, alice: Account) -> None:
    """PATCH changes the given fields (description null clears it) and keeps the others."""
    created = _create(client, alice, description="ops")
    path = f"/v1/webhooks/{created['id']}"
    body = {"url": "http://other.example.com:8080/h", "event_types": ["job.succeeded"]}
    changed = client.patch(path, json=body, headers=_auth(alice))
    assert changed.status_code == 200
    out = changed.get_json()
    assert (out["url"], out["event_types"], out["description"]) == (
        "http://other.example.com:8080/h",
        ["job.succeeded"],
        "ops",
    )
    out = client.patch(
        path, json={"description": None, "enabled": False}, headers=_auth(alice)
    ).get_json()
    assert (out["description"], out["enabled"]) == (None, False)
    assert client.get(path, headers=_auth(alice)).get_json() == out


def test_enabling_clears_the_disabled_reason(client: FlaskClient, alice: Account) -> None:
    """An endpoint that delivery disabled is re-enabled by the user, and the reason goes."""
    created = _create(client, alice)
    with transaction() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(created["id"]))
            .values(enabled=False, disabled_reason="410 Gone from the endpoint")
        )
    path = f"/v1/webhooks/{created['id']}"
    assert client.get(path, headers=_auth(alice)).get_json()["disabled_reason"]
    out = client.patch(path, json={"enabled": True}, headers=_auth(alice)).get_json()
    assert (out["enabled"], out["disabled_reason"]) == (True, None)


def test_delete_is_204_then_gone(client: FlaskClient, alice: Account) -> None:
    """DELETE answers 204 with no body; the endpoint is then 404."""
    created = _create(client, alice)
    response = client.delete(f"/v1/webhooks/{created['id']}", headers=_auth(alice))
    assert response.status_code == 204 and response.get_data() == b""
    error_of(client.get(f"/v1/webhooks/{created['id']}", headers=_auth(alice)), 404, "not_found")


def test_rotation_keeps_the_old_secret_for_the_grace_period(
    client: FlaskClient, alice: Account
) -> None:
    """rotate-secret shows a new secret once; the old one is kept until now + the grace."""
    created = _create(client, alice)
    response = client.post(f"/v1/webhooks/{created['id']}/rotate-secret", headers=_auth(alice))
    assert response.status_code == 200
    rotated = response.get_json()
    assert rotated["secret"] != created["secret"] and _signs_and_verifies(rotated["secret"])
    with transaction() as session:
        row = session.get(WebhookEndpoint, uuid.UUID(created["id"]))
        db_now = session.scalar(select(func.now()))
    assert row is not None
    assert (row.secret, row.previous_secret) == (rotated["secret"], created["secret"])
    grace = timedelta(seconds=get_settings().webhook_secret_rotation_grace_s)
    assert row.previous_secret_expires_at is not None
    assert db_now - timedelta(minutes=1) < row.previous_secret_expires_at - grace <= db_now
    assert datetime.fromisoformat(rotated["previous_secret_expires_at"]) == (
        row.previous_secret_expires_at
    )


def test_someone_elses_endpoint_is_not_found(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Another user's endpoint, an unknown id or a malformed id is 404 on every route."""
    bob = make_account("bob")
    theirs = _create(client, bob)["id"]
    for endpoint_id in (theirs, str(uuid.uuid4()), "not-a-uuid"):
        path = f"/v1/webhooks/{endpoint_id}"
        error_of(client.get(path, headers=_auth(alice)), 404, "not_found")
        error_of(
            client.patch(path, json={"enabled": False}, headers=_auth(alice)), 404, "not_found"
        )
        error_of(client.post(f"{path}/rotate-secret", headers=_auth(alice)), 404, "not_found")
        error_of(client.delete(path, headers=_auth(alice)), 404, "not_found")
    assert client.get("/v1/webhooks", headers=_auth(alice)).get_json()["data"] == []
    assert client.get(f"/v1/webhooks/{theirs}", headers=_auth(bob)).get_json()["enabled"]


def test_endpoints_per_user_are_capped(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """The endpoint over the per-user cap is a 409; other users are unaffected."""
    for _ in range(MAX_ENDPOINTS_PER_USER):
        _create(client, alice)
    error = error_of(
        client.post("/v1/webhooks", json=VALID, headers=_auth(alice)), 409, "limit_reached"
    )
    assert error["details"] == {"limit": MAX_ENDPOINTS_PER_USER}
    _create(client, make_account("bob"))


# (why, body, also refused as a PATCH: a partial body is a fine patch)
BAD: list[tuple[str, Any, bool]] = [
    ("no url", {"event_types": ["job.failed"]}, False),
    ("no event types", {"url": VALID["url"]}, False),
    ("ftp url", {**VALID, "url": "ftp://example.com/x"}, True),
    ("not a url", {**VALID, "url": "hooks.example.com"}, True),
    ("url with a space", {**VALID, "url": "https://example.com/a b"}, True),
    ("url too long", {**VALID, "url": "https://example.com/" + "a" * 2030}, True),
    ("url not a string", {**VALID, "url": 5}, True),
    ("empty event types", {**VALID, "event_types": []}, True),
    ("unknown event type", {**VALID, "event_types": ["job.started"]}, True),
    ("event types not a list", {**VALID, "event_types": "job.failed"}, True),
    ("enabled as string", {**VALID, "enabled": "yes"}, True),
    ("description too long", {**VALID, "description": "x" * 501}, True),
    ("NUL in description", {**VALID, "description": "a\u0000"}, True),
    ("NUL in url", {**VALID, "url": "https://example.com/\u0000"}, True),
    ("unknown field", {**VALID, "secret": "whsec_mine"}, True),
]


@pytest.mark.parametrize(("why", "body", "bad_patch"), BAD, ids=[b[0] for b in BAD])
def test_bad_bodies_are_422(
    client: FlaskClient, alice: Account, why: str, body: Any, bad_patch: bool
) -> None:
    """Invalid endpoint bodies answer 422 on create (and on patch) and change nothing."""
    error_of(client.post("/v1/webhooks", json=body, headers=_auth(alice)), 422, "validation_error")
    created = _create(client, alice)
    if bad_patch:
        response = client.patch(f"/v1/webhooks/{created['id']}", json=body, headers=_auth(alice))
        error_of(response, 422, "validation_error")
    [stored] = client.get("/v1/webhooks", headers=_auth(alice)).get_json()["data"]
    assert {k: stored[k] for k in VALID} == VALID


@pytest.mark.parametrize("body", [{"url": None}, {"event_types": None}, {"enabled": None}])
def test_patch_refuses_null_for_required_fields(
    client: FlaskClient, alice: Account, body: dict[str, Any]
) -> None:
    """Only description can be cleared; null url, event_types or enabled is a 422."""
    created = _create(client, alice)
    response = client.patch(f"/v1/webhooks/{created['id']}", json=body, headers=_auth(alice))
    error_of(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks"),
        ("get", "/v1/webhooks/{id}"),
        ("patch", "/v1/webhooks/{id}"),
        ("delete", "/v1/webhooks/{id}"),
        ("post", "/v1/webhooks/{id}/rotate-secret"),
    ],
)
def test_missing_or_wrong_key_is_401(
    client: FlaskClient, alice: Account, method: str, path: str
) -> None:
    """Every webhook route answers 401 without a valid bearer key."""
    url = path.format(id=uuid.uuid4())
    for headers in ({}, {"Authorization": "Bearer pq_wrong"}):
        error_of(getattr(client, method)(url, json=VALID, headers=headers), 401, "unauthorized")


def test_the_event_types_an_endpoint_may_subscribe_to_are_the_events_promptq_sends() -> None:
    assert get_args(EventType) == EVENT_TYPES


def test_a_created_endpoint_s_location_is_absolute_and_resolves(
    client: FlaskClient, alice: Account
) -> None:
    response = client.post("/v1/webhooks", json=VALID, headers=_auth(alice))
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith("http") and location.endswith(f"/v1/webhooks/{response.json['id']}")
    fetched = client.get(location, headers=_auth(alice)).get_json()
    assert fetched["id"] == response.json["id"] and "secret" not in fetched
