"""The audit log: every admin and key action (through the admin API, a user's own key and the
`promptq` CLI) is a row with its actor, target and changed fields, never a secret; and
GET /v1/admin/audit pages it newest first, filtered."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, get_args

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text

from api.cli import main
from api.schemas.audit import AuditAction, TargetType
from shared.db import transaction
from shared.models import ApiKey, User, WebhookEndpoint
from shared.repositories.audit_log import ACTIONS, TARGET_TYPES
from shared.settings import get_settings
from tests.api.job_helpers import error_of
from tests.conftest import Account, Services

ADMIN_KEY = "admin-" + uuid.uuid4().hex


@pytest.fixture
def admin(clean: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The admin API enabled; yields the admin's Authorization header."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    get_settings.cache_clear()
    yield {"Authorization": f"Bearer {ADMIN_KEY}"}
    get_settings.cache_clear()


def _rows() -> list[dict[str, Any]]:
    """Every audit row as PostgreSQL renders the whole row in JSON, oldest first (the rows of
    one transaction share its time: by action then)."""
    with transaction() as session:
        return [
            {"json": row.whole, **row._mapping}
            for row in session.execute(
                text(
                    "SELECT row_to_json(a)::text AS whole, a.* FROM audit_events a "
                    "ORDER BY created_at, action"
                )
            )
        ]


def _secrets() -> list[str]:
    """Every secret, key hash and signing secret the database holds now."""
    with transaction() as session:
        found: list[str] = []
        for key in session.query(ApiKey):
            found += [key.key_hash, key.prefix]
        for user in session.query(User):
            found += [user.callback_secret, user.callback_previous_secret or ""]
        for endpoint in session.query(WebhookEndpoint):
            found += [endpoint.secret, endpoint.previous_secret or ""]
        return [s for s in found if s]


def _assert_no_secret(rows: list[dict[str, Any]], also: list[str]) -> None:
    secrets = _secrets() + also
    assert secrets
    for row in rows:
        for secret in secrets:
            assert secret not in row["json"], (row["action"], "holds a secret")


def test_admin_actions_are_audited_without_secrets(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    """Create a user, change its budget and share, issue, change and revoke a key: one row each
    (a PATCH of both budget and share is two), actor admin, with exactly the changed fields;
    no row holds the key, its prefix or hash, or the callback secret. A no-op records nothing."""
    user = client.post(
        "/v1/admin/users", json={"name": "alice", "daily_budget_usd": "5"}, headers=admin
    ).get_json()
    path = f"/v1/admin/users/{user['id']}"
    assert (
        client.patch(
            path, json={"daily_budget_usd": "7.50", "weight": 3}, headers=admin
        ).status_code
        == 200
    )
    assert client.patch(path, json={"weight": 3}, headers=admin).status_code == 200  # no change
    issued = client.post(
        f"{path}/keys", json={"name": "ci", "rpm_limit": 10}, headers=admin
    ).get_json()
    key_path = f"/v1/admin/keys/{issued['id']}"
    assert client.patch(key_path, json={"rpm_limit": 20}, headers=admin).status_code == 200
    assert client.delete(key_path, headers=admin).status_code == 200
    assert client.delete(key_path, headers=admin).status_code == 200  # already revoked

    rows = _rows()
    assert [(r["action"], r["actor_type"], r["actor_key_id"]) for r in rows] == [
        ("user.created", "admin", None),
        ("user.budget_changed", "admin", None),
        ("user.share_changed", "admin", None),
        ("key.issued", "admin", None),
        ("key.updated", "admin", None),
        ("key.revoked", "admin", None),
    ]
    user_id, key_id = uuid.UUID(user["id"]), uuid.UUID(issued["id"])
    assert [(r["target_type"], r["target_id"], r["user_id"]) for r in rows] == [
        *[("user", user_id, user_id)] * 3,
        *[("api_key", key_id, user_id)] * 3,
    ]
    created, budget, share, key_issued, key_updated, revoked = (r["changes"] for r in rows)
    assert created == {
        "name": {"before": None, "after": "alice"},
        "daily_budget_usd": {"before": None, "after": "5"},
        "monthly_budget_usd": {"before": None, "after": None},
        "weight": {"before": None, "after": 1},
        "max_concurrency": {"before": None, "after": None},
    }
    assert budget == {"daily_budget_usd": {"before": "5", "after": "7.5"}}
    assert share == {"weight": {"before": 1, "after": 3}}
    assert key_issued == {
        "name": {"before": None, "after": "ci"},
        "expires_at": {"before": None, "after": None},
        "rpm_limit": {"before": None, "after": 10},
        "tpm_limit": {"before": None, "after": None},
    }
    assert key_updated == {"rpm_limit": {"before": 10, "after": 20}}
    assert set(revoked) == {"revoked_at"} and revoked["revoked_at"]["before"] is None
    assert datetime.fromisoformat(revoked["revoked_at"]["after"]) >= rows[0]["created_at"]
    _assert_no_secret(rows, [issued["key"]])


def test_a_user_s_own_key_and_secret_actions_name_the_key(
    client: FlaskClient, alice: Account
) -> None:
    """Creating and revoking a key with /v1/keys, rotating the callback secret and an
    endpoint's secret: actor api_key with the id of the key that asked; no secret recorded,
    neither the rotated-out nor the new one."""
    auth = {"Authorization": f"Bearer {alice.key}"}
    [caller] = client.get("/v1/keys", headers=auth).get_json()["data"]
    made = client.post("/v1/keys", json={"name": "second"}, headers=auth).get_json()
    assert client.delete(f"/v1/keys/{made['id']}", headers=auth).status_code == 200
    old_callback = client.get("/v1/callback-secret", headers=auth).get_json()["secret"]
    new_callback = client.post("/v1/callback-secret/rotate", headers=auth).get_json()["secret"]
    endpoint = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/h", "event_types": ["budget.threshold"]},
        headers=auth,
    ).get_json()
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=auth).get_json()

    rows = [r for r in _rows() if r["actor_type"] == "api_key"]
    assert [(r["action"], r["target_type"], str(r["target_id"])) for r in rows] == [
        ("key.issued", "api_key", made["id"]),
        ("key.revoked", "api_key", made["id"]),
        ("user.callback_secret_rotated", "user", alice.user_id),
        ("webhook_endpoint.secret_rotated", "webhook_endpoint", endpoint["id"]),
    ]
    assert {str(r["actor_key_id"]) for r in rows} == {caller["id"]}
    assert {str(r["user_id"]) for r in rows} == {alice.user_id}
    assert set(rows[2]["changes"]) == {"callback_previous_secret_expires_at"}
    assert set(rows[3]["changes"]) == {"previous_secret_expires_at"}
    _assert_no_secret(
        rows,
        [made["key"], alice.key, old_callback, new_callback, endpoint["secret"], rotated["secret"]],
    )


def test_cli_actions_are_audited_as_the_cli(clean: Services) -> None:
    """`promptq users create / set-budget / set-share` and `keys create / revoke` record rows
    with actor cli, none holding the printed key."""
    runner = CliRunner()

    def run(*args: str) -> str:
        done = runner.invoke(main, list(args), catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.stdout.strip()

    user_id = run("users", "create", "carol")
    run("users", "set-budget", "carol", "--monthly", "20")
    run("users", "set-share", "carol", "--max-concurrency", "4")
    plaintext = run("keys", "create", "carol", "--name", "laptop")
    with transaction() as session:
        [key] = session.query(ApiKey).all()
    run("keys", "revoke", str(key.id))

    rows = _rows()
    assert [(r["action"], r["actor_type"], str(r["user_id"])) for r in rows] == [
        ("user.created", "cli", user_id),
        ("user.budget_changed", "cli", user_id),
        ("user.share_changed", "cli", user_id),
        ("key.issued", "cli", user_id),
        ("key.revoked", "cli", user_id),
    ]
    assert rows[1]["changes"] == {"monthly_budget_usd": {"before": None, "after": "20"}}
    assert rows[2]["changes"] == {"max_concurrency": {"before": None, "after": 4}}
    _assert_no_secret(rows, [plaintext])


def test_the_audit_route_pages_newest_first_and_filters(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    """GET /v1/admin/audit: newest first, limit and cursor page without overlap, and action,
    target and user filters narrow it; it needs the admin key."""
    ids = [
        client.post("/v1/admin/users", json={"name": f"u{i}"}, headers=admin).get_json()["id"]
        for i in range(3)
    ]
    key = client.post(f"/v1/admin/users/{ids[0]}/keys", json={}, headers=admin).get_json()
    client.patch(f"/v1/admin/users/{ids[1]}", json={"daily_budget_usd": "1"}, headers=admin)

    everything = client.get("/v1/admin/audit", headers=admin).get_json()
    assert everything["object"] == "list" and everything["next_cursor"] is None
    assert [e["action"] for e in everything["data"]] == [
        "user.budget_changed",
        "key.issued",
        "user.created",
        "user.created",
        "user.created",
    ]
    assert [e["target_id"] for e in everything["data"][2:]] == ids[::-1]
    first = everything["data"][0]
    assert set(first) == {
        *("id", "object", "created_at", "actor_type", "actor_key_id", "action"),
        *("target_type", "target_id", "user_id", "changes"),
    }
    assert first["object"] == "audit_event"

    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/admin/audit?{query}", headers=admin).get_json()
        assert len(page["data"]) <= 2
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in everything["data"]]

    def only(query: str) -> list[tuple[str, str]]:
        data = client.get(f"/v1/admin/audit?{query}", headers=admin).get_json()["data"]
        return [(e["action"], e["target_id"]) for e in data]

    assert only("action=user.created") == [("user.created", i) for i in ids[::-1]]
    assert only(f"target_type=api_key&target_id={key['id']}") == [("key.issued", key["id"])]
    assert only(f"user_id={ids[0]}") == [("key.issued", key["id"]), ("user.created", ids[0])]
    assert only(f"target_id={ids[1]}&action=user.budget_changed") == [
        ("user.budget_changed", ids[1])
    ]
    assert only(f"target_id={uuid.uuid4()}") == []

    for bad in ("action=user.deleted", "target_id=nope", "limit=101", "cursor=x", "extra=1"):
        error_of(client.get(f"/v1/admin/audit?{bad}", headers=admin), 422, "validation_error")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        error_of(client.get("/v1/admin/audit", headers=headers), 401, "unauthorized")


def test_the_documented_actions_and_targets_are_the_recorded_ones() -> None:
    assert get_args(AuditAction) == ACTIONS
    assert get_args(TargetType) == TARGET_TYPES


def test_a_user_key_is_not_an_admin_key(
    client: FlaskClient, admin: dict[str, str], make_account: Callable[[str], Account]
) -> None:
    user_key = make_account("mallory").key
    response = client.get("/v1/admin/audit", headers={"Authorization": f"Bearer {user_key}"})
    error_of(response, 401, "unauthorized")
