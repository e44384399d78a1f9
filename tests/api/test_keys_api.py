"""The caller's own API keys (GET/POST /v1/keys, DELETE /v1/keys/<id>), revocation and expiry,
through the Flask app on the real Postgres."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from api.auth import forget_key
from devstack.processes import wait_until
from shared.db import transaction
from shared.models import ApiKey
from tests.api.job_helpers import error_of
from tests.conftest import Account

KEY_FIELDS = {
    "id",
    "object",
    "user_id",
    "name",
    "prefix",
    "created_at",
    "expires_at",
    "revoked_at",
    "rpm_limit",
    "tpm_limit",
}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _set_key(key_plaintext: str, **values: Any) -> None:
    """Change the key in the database and, as the API process making a change does, drop it
    from this process's key cache (other processes see it within KEY_CACHE_S:
    tests/e2e/test_key_cache.py)."""
    digest = hashlib.sha256(key_plaintext.encode()).hexdigest()
    with transaction() as session:
        session.execute(update(ApiKey).where(ApiKey.key_hash == digest).values(**values))
    forget_key(digest)


def _is_live(client: FlaskClient, key: str) -> bool:
    response = client.get("/v1/keys", headers=_auth(key))
    assert response.status_code in (200, 401), response.get_data(as_text=True)
    return response.status_code == 200


def test_list_shows_own_keys_without_secrets(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """GET /v1/keys lists only the caller's keys, with prefix and metadata, never hash or key."""
    make_account("bob")
    response = client.get("/v1/keys", headers=_auth(alice.key))
    assert response.status_code == 200
    body = response.get_json()
    assert body["object"] == "list"
    [key] = body["data"]
    assert set(key) == KEY_FIELDS
    assert key["user_id"] == alice.user_id
    assert key["prefix"] == alice.key[:10]
    assert alice.key not in response.get_data(as_text=True)
    assert hashlib.sha256(alice.key.encode()).hexdigest() not in response.get_data(as_text=True)


def test_create_returns_the_key_once_and_stores_only_its_hash(
    client: FlaskClient, alice: Account
) -> None:
    """POST /v1/keys answers 201 with a working pq_ key that is stored only as SHA-256."""
    response = client.post("/v1/keys", json={"name": "ci"}, headers=_auth(alice.key))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == KEY_FIELDS | {"key"}
    plaintext = body["key"]
    assert plaintext.startswith("pq_") and len(plaintext) >= 40
    assert (body["name"], body["prefix"], body["expires_at"]) == ("ci", plaintext[:10], None)
    assert _is_live(client, plaintext)
    listed = client.get("/v1/keys", headers=_auth(plaintext)).get_data(as_text=True)
    assert body["id"] in listed and plaintext not in listed
    with transaction() as session:
        row = session.get(ApiKey, uuid.UUID(body["id"]))
        assert row is not None
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        stored = session.execute(
            text("SELECT row_to_json(api_keys)::text FROM api_keys WHERE id = :id"),
            {"id": row.id},
        ).scalar_one()
        assert plaintext not in stored


def test_create_with_expiry(client: FlaskClient, alice: Account) -> None:
    """expires_in_days and expires_at (ISO 8601) both set the new key's expiry."""
    before = datetime.now(UTC)
    body = client.post("/v1/keys", json={"expires_in_days": 7}, headers=_auth(alice.key))
    assert body.status_code == 201
    expires = datetime.fromisoformat(body.get_json()["expires_at"])
    assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
    at = "2099-01-02T03:04:05+02:00"
    body = client.post("/v1/keys", json={"expires_at": at}, headers=_auth(alice.key))
    assert body.status_code == 201
    assert datetime.fromisoformat(body.get_json()["expires_at"]) == datetime.fromisoformat(at)


def test_a_minted_key_inherits_the_callers_limits_and_expiry(
    client: FlaskClient, alice: Account
) -> None:
    """A key created by a key gets its rate limits and cannot expire after it."""
    caller_expiry = datetime.now(UTC) + timedelta(days=10)
    _set_key(alice.key, rpm_limit=5, tpm_limit=1000, expires_at=caller_expiry)
    body = client.post("/v1/keys", json={}, headers=_auth(alice.key)).get_json()
    assert (body["rpm_limit"], body["tpm_limit"]) == (5, 1000)
    assert datetime.fromisoformat(body["expires_at"]) == caller_expiry
    shorter = client.post("/v1/keys", json={"expires_in_days": 1}, headers=_auth(alice.key))
    assert shorter.status_code == 201
    error = error_of(
        client.post("/v1/keys", json={"expires_in_days": 30}, headers=_auth(alice.key)),
        422,
        "validation_error",
    )
    assert error["details"][0]["field"] == "expires_at"


BAD_CREATE: list[tuple[str, Any, int, str]] = [
    ("not json", b"{name", 400, "invalid_json"),
    ("array", [], 422, "validation_error"),
    ("unknown field", {"colour": "red"}, 422, "validation_error"),
    ("empty name", {"name": ""}, 422, "validation_error"),
    ("name too long", {"name": "x" * 101}, 422, "validation_error"),
    ("NUL in name", {"name": "a\u0000b"}, 422, "validation_error"),
    ("newline in name", {"name": "a\nb"}, 422, "validation_error"),
    ("expiry in the past", {"expires_at": "2020-01-01T00:00:00Z"}, 422, "validation_error"),
    ("expiry without zone", {"expires_at": "2099-01-01T00:00:00"}, 422, "validation_error"),
    ("expiry not a date", {"expires_at": "tomorrow"}, 422, "validation_error"),
    ("zero days", {"expires_in_days": 0}, 422, "validation_error"),
    ("days as string", {"expires_in_days": "7"}, 422, "validation_error"),
    (
        "both expiries",
        {"expires_in_days": 7, "expires_at": "2099-01-01T00:00:00Z"},
        422,
        "validation_error",
    ),
    ("rate limit by the user", {"rpm_limit": 10_000}, 422, "validation_error"),
]


@pytest.mark.parametrize(
    ("why", "body", "status", "code"), BAD_CREATE, ids=[b[0] for b in BAD_CREATE]
)
def test_bad_create_bodies_are_refused(
    client: FlaskClient, alice: Account, why: str, body: Any, status: int, code: str
) -> None:
    """A malformed POST /v1/keys is a 4xx with a stable code and creates no key."""
    kwargs: dict[str, Any] = (
        {"data": body, "content_type": "application/json"}
        if isinstance(body, bytes)
        else {"json": body}
    )
    error_of(client.post("/v1/keys", headers=_auth(alice.key), **kwargs), status, code)
    with transaction() as session:
        assert len(session.scalars(select(ApiKey)).all()) == 1


def test_revoke_takes_effect_on_the_next_request(client: FlaskClient, alice: Account) -> None:
    """DELETE /v1/keys/<id> sets revoked_at; the revoked key then authenticates as 401."""
    other = client.post("/v1/keys", json={}, headers=_auth(alice.key)).get_json()
    assert _is_live(client, other["key"])
    response = client.delete(f"/v1/keys/{other['id']}", headers=_auth(alice.key))
    assert response.status_code == 200
    revoked = response.get_json()
    assert revoked["id"] == other["id"] and revoked["revoked_at"] is not None
    error_of(client.get("/v1/keys", headers=_auth(other["key"])), 401, "unauthorized")
    again = client.delete(f"/v1/keys/{other['id']}", headers=_auth(alice.key)).get_json()
    assert again["revoked_at"] == revoked["revoked_at"]
    assert _is_live(client, alice.key)


def test_a_key_can_revoke_itself(client: FlaskClient, alice: Account) -> None:
    """Revoking the key in use answers 200, and that key is refused from the next request."""
    [own] = client.get("/v1/keys", headers=_auth(alice.key)).get_json()["data"]
    assert client.delete(f"/v1/keys/{own['id']}", headers=_auth(alice.key)).status_code == 200
    assert not _is_live(client, alice.key)


def test_someone_elses_key_is_not_found(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Revoking another user's key, an unknown id or a malformed one is a 404 and no change."""
    bob = make_account("bob")
    [bobs] = client.get("/v1/keys", headers=_auth(bob.key)).get_json()["data"]
    error_of(client.delete(f"/v1/keys/{bobs['id']}", headers=_auth(alice.key)), 404, "not_found")
    error_of(client.delete(f"/v1/keys/{uuid.uuid4()}", headers=_auth(alice.key)), 404, "not_found")
    error_of(client.delete("/v1/keys/not-a-uuid", headers=_auth(alice.key)), 404, "not_found")
    assert _is_live(client, bob.key)


def test_an_expired_key_is_refused(client: FlaskClient, alice: Account) -> None:
    """A key is accepted before its expiry and refused (401) from the request after it."""
    _set_key(alice.key, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert _is_live(client, alice.key)
    _set_key(alice.key, expires_at=text("now() - interval '1 second'"))
    error = error_of(client.get("/v1/keys", headers=_auth(alice.key)), 401, "unauthorized")
    assert "expired" in error["message"]


def test_a_cached_key_is_refused_from_its_expiry_on(client: FlaskClient, alice: Account) -> None:
    """A key cached by the API is refused once its expires_at passes, not a cache period later."""
    expiry = datetime.now(UTC) + timedelta(seconds=1)
    _set_key(alice.key, expires_at=expiry)
    assert _is_live(client, alice.key)
    wait_until(lambda: datetime.now(UTC) > expiry, timeout=5, interval=0.05, what="the expiry")
    error_of(client.get("/v1/keys", headers=_auth(alice.key)), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/keys"), ("post", "/v1/keys"), ("delete", f"/v1/keys/{uuid.uuid4()}")],
)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer pq_unknown"}], ids=["missing", "wrong"]
)
def test_missing_or_wrong_key_is_401(
    client: FlaskClient, alice: Account, method: str, path: str, headers: dict[str, str]
) -> None:
    """Every key route answers 401 without a valid bearer key."""
    response = getattr(client, method)(path, json={}, headers=headers)
    error_of(response, 401, "unauthorized")
