"""The operator's admin API under /v1/admin: users, budgets and keys, behind ADMIN_API_KEY."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

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
    # The next get_settings() reads the environment monkeypatch restores after this fixture.
    get_settings.cache_clear()


@pytest.fixture
def admin_disabled(clean: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ADMIN_API_KEY empty: the admin API is switched off."""
    monkeypatch.setenv("ADMIN_API_KEY", "")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _new_user(client: FlaskClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/admin/users", json={"name": "alice", **body}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _key_works(client: FlaskClient, key: str) -> bool:
    response = client.get("/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code in (200, 401)
    return response.status_code == 200


USER_ROUTES = [
    ("get", "/v1/admin/users/{id}"),
    ("patch", "/v1/admin/users/{id}"),
    ("post", "/v1/admin/users/{id}/keys"),
    ("get", "/v1/admin/users/{id}/keys"),
]
ROUTES = [
    ("post", "/v1/admin/users"),
    ("get", "/v1/admin/users"),
    *USER_ROUTES,
    ("delete", "/v1/admin/keys/{id}"),
    ("patch", "/v1/admin/keys/{id}"),
]


def _call(client: FlaskClient, route: tuple[str, str], headers: dict[str, str]) -> Any:
    method, path = route
    return getattr(client, method)(path.format(id=uuid.uuid4()), json={}, headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_needs_the_admin_key(
    client: FlaskClient,
    admin: dict[str, str],
    make_account: Callable[[str], Account],
    route: tuple[str, str],
) -> None:
    """No key, a wrong key or a user's API key answer 401 on every admin route."""
    user_key = make_account("mallory").key
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {user_key}"}):
        error_of(_call(client, route, headers), 401, "unauthorized")


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_admin_api_is_forbidden_when_disabled(
    client: FlaskClient, admin_disabled: None, route: tuple[str, str]
) -> None:
    """With ADMIN_API_KEY empty every admin route answers 403, whatever key is sent."""
    error = error_of(_call(client, route, {"Authorization": "Bearer anything"}), 403, "forbidden")
    assert "ADMIN_API_KEY" in error["message"]


def test_create_get_and_list_users(client: FlaskClient, admin: dict[str, str]) -> None:
    """POST creates a user (201, budgets as exact strings); GET and the list show it."""
    alice = _new_user(client, admin, daily_budget_usd="12.50", monthly_budget_usd=100)
    assert alice["object"] == "user" and alice["name"] == "alice"
    assert (alice["daily_budget_usd"], alice["monthly_budget_usd"]) == ("12.5", "100")
    got = client.get(f"/v1/admin/users/{alice['id']}", headers=admin)
    assert got.status_code == 200 and got.get_json() == alice
    bob = client.post("/v1/admin/users", json={"name": "bob"}, headers=admin).get_json()
    assert bob["daily_budget_usd"] is None
    listed = client.get("/v1/admin/users", headers=admin).get_json()
    assert [u["name"] for u in listed["data"]] == ["alice", "bob"]
    assert listed["has_more"] is False


def test_duplicate_user_is_409(client: FlaskClient, admin: dict[str, str]) -> None:
    """A second user with a taken name is a 409 already_exists."""
    _new_user(client, admin)
    error_of(
        client.post("/v1/admin/users", json={"name": "alice"}, headers=admin), 409, "already_exists"
    )


def test_user_list_pages(client: FlaskClient, admin: dict[str, str]) -> None:
    """limit/offset page through users in creation order; has_more says if more follow."""
    for name in ("u1", "u2", "u3"):
        client.post("/v1/admin/users", json={"name": name}, headers=admin)
    first = client.get("/v1/admin/users?limit=2", headers=admin).get_json()
    assert [u["name"] for u in first["data"]] == ["u1", "u2"] and first["has_more"] is True
    rest = client.get("/v1/admin/users?limit=2&offset=2", headers=admin).get_json()
    assert [u["name"] for u in rest["data"]] == ["u3"] and rest["has_more"] is False


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=abc", "offset=-1", "page=2", "limit=1&limit=2"]
)
def test_bad_list_query_is_422(client: FlaskClient, admin: dict[str, str], query: str) -> None:
    """Out-of-range, non-numeric, unknown or repeated query parameters answer 422."""
    error = error_of(client.get(f"/v1/admin/users?{query}", headers=admin), 422, "validation_error")
    assert error["details"]


BAD_USERS: list[tuple[str, Any]] = [
    ("no name", {}),
    ("empty name", {"name": ""}),
    ("long name", {"name": "x" * 201}),
    ("name not string", {"name": 5}),
    ("NUL in name", {"name": "a\u0000"}),
    ("negative budget", {"name": "a", "daily_budget_usd": "-1"}),
    ("too precise", {"name": "a", "daily_budget_usd": "0.00000000001"}),
    ("not a number", {"name": "a", "monthly_budget_usd": "ten"}),
    ("NaN", {"name": "a", "monthly_budget_usd": "NaN"}),
    ("too large", {"name": "a", "monthly_budget_usd": "12345678901"}),
    ("unknown field", {"name": "a", "admin": True}),
]


@pytest.mark.parametrize(("why", "body"), BAD_USERS, ids=[b[0] for b in BAD_USERS])
def test_bad_user_bodies_are_422(
    client: FlaskClient, admin: dict[str, str], why: str, body: Any
) -> None:
    """Invalid user bodies answer 422 validation_error and create nobody."""
    error_of(client.post("/v1/admin/users", json=body, headers=admin), 422, "validation_error")
    assert client.get("/v1/admin/users", headers=admin).get_json()["data"] == []


def test_patch_budgets(client: FlaskClient, admin: dict[str, str]) -> None:
    """PATCH sets a budget, null clears it, and an absent budget is kept."""
    user = _new_user(client, admin, daily_budget_usd="5", monthly_budget_usd="50")
    path = f"/v1/admin/users/{user['id']}"
    changed = client.patch(path, json={"daily_budget_usd": "0.0000000001"}, headers=admin)
    assert changed.status_code == 200
    assert changed.get_json()["daily_budget_usd"] == "0.0000000001"
    assert changed.get_json()["monthly_budget_usd"] == "50"
    cleared = client.patch(path, json={"monthly_budget_usd": None}, headers=admin).get_json()
    assert (cleared["daily_budget_usd"], cleared["monthly_budget_usd"]) == ("0.0000000001", None)
    assert client.get(path, headers=admin).get_json() == cleared
    error_of(
        client.patch(path, json={"daily_budget_usd": -1}, headers=admin), 422, "validation_error"
    )
    error_of(client.patch(path, json={"name": "eve"}, headers=admin), 422, "validation_error")


def test_patch_weight_and_max_concurrency(client: FlaskClient, admin: dict[str, str]) -> None:
    """A new user has weight 1 and no cap; PATCH sets both, null clears the cap, and a field
    left out (a budget, or the other of the two) is kept."""
    user = _new_user(client, admin, daily_budget_usd="5")
    assert (user["weight"], user["max_concurrency"]) == (1, None)
    path = f"/v1/admin/users/{user['id']}"
    changed = client.patch(path, json={"weight": 5, "max_concurrency": 3}, headers=admin)
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert (changed.get_json()["weight"], changed.get_json()["max_concurrency"]) == (5, 3)
    assert client.get(path, headers=admin).get_json() == changed.get_json()
    kept = client.patch(path, json={"weight": 1000}, headers=admin).get_json()
    assert (kept["weight"], kept["max_concurrency"], kept["daily_budget_usd"]) == (1000, 3, "5")
    cleared = client.patch(path, json={"max_concurrency": None}, headers=admin).get_json()
    assert (cleared["weight"], cleared["max_concurrency"]) == (1000, None)
    listed = client.get("/v1/admin/users", headers=admin).get_json()["data"]
    assert listed == [cleared]


BAD_SHARES: list[tuple[str, Any]] = [
    ("weight 0", {"weight": 0}),
    ("weight over 1000", {"weight": 1001}),
    ("weight null", {"weight": None}),
    ("weight string", {"weight": "5"}),
    ("weight fraction", {"weight": 1.5}),
    ("weight boolean", {"weight": True}),
    ("max_concurrency 0", {"max_concurrency": 0}),
    ("max_concurrency negative", {"max_concurrency": -1}),
    ("max_concurrency string", {"max_concurrency": "3"}),
    ("max_concurrency over int4", {"max_concurrency": 2**31}),
]


@pytest.mark.parametrize(("why", "body"), BAD_SHARES, ids=[b[0] for b in BAD_SHARES])
def test_bad_weight_or_max_concurrency_is_422(
    client: FlaskClient, admin: dict[str, str], why: str, body: dict[str, Any]
) -> None:
    """An out-of-range, null weight or a non-integer value answers 422 naming the field, and
    changes nothing."""
    user = _new_user(client, admin)
    path = f"/v1/admin/users/{user['id']}"
    error = error_of(client.patch(path, json=body, headers=admin), 422, "validation_error")
    assert [problem["field"] for problem in error["details"]] == list(body)
    assert client.get(path, headers=admin).get_json() == user


def test_patch_share_of_unknown_user_is_404(client: FlaskClient, admin: dict[str, str]) -> None:
    for user_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = client.patch(
            f"/v1/admin/users/{user_id}", json={"weight": 2, "max_concurrency": 1}, headers=admin
        )
        error_of(response, 404, "not_found")


def test_openapi_documents_weight_and_max_concurrency(client: FlaskClient) -> None:
    """The PATCH body documents the bounds (weight never null, with no default to mislead); the
    answer has both fields."""
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    update = schemas["UserUpdate"]["properties"]
    assert {k: update["weight"][k] for k in ("type", "minimum", "maximum")} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
    }
    assert "default" not in update["weight"]
    assert {"type": "integer", "minimum": 1, "maximum": 2**31 - 1} in update["max_concurrency"][
        "anyOf"
    ]
    assert {"type": "null"} in update["max_concurrency"]["anyOf"]
    assert {"weight", "max_concurrency"} <= set(schemas["UserOut"]["required"])


def test_unknown_user_is_404(client: FlaskClient, admin: dict[str, str]) -> None:
    """Every per-user route answers 404 for an unknown or malformed user id."""
    for user_id in (str(uuid.uuid4()), "not-a-uuid"):
        for method, path in USER_ROUTES:
            response = getattr(client, method)(path.format(id=user_id), json={}, headers=admin)
            error_of(response, 404, "not_found")


def test_issue_list_and_revoke_keys(client: FlaskClient, admin: dict[str, str]) -> None:
    """An issued key (plaintext once) is listed, and stops working on revocation."""
    user = _new_user(client, admin)
    response = client.post(
        f"/v1/admin/users/{user['id']}/keys",
        json={"name": "batch", "rpm_limit": 60, "tpm_limit": 90_000, "expires_in_days": 30},
        headers=admin,
    )
    assert response.status_code == 201
    issued = response.get_json()
    assert issued["key"].startswith("pq_") and issued["user_id"] == user["id"]
    assert (issued["rpm_limit"], issued["tpm_limit"], issued["name"]) == (60, 90_000, "batch")
    assert issued["expires_at"] is not None
    assert _key_works(client, issued["key"])
    listed = client.get(f"/v1/admin/users/{user['id']}/keys", headers=admin)
    assert [k["id"] for k in listed.get_json()["data"]] == [issued["id"]]
    assert issued["key"] not in listed.get_data(as_text=True)
    revoked = client.delete(f"/v1/admin/keys/{issued['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert not _key_works(client, issued["key"])


def test_patch_key_limits_and_expiry(client: FlaskClient, admin: dict[str, str]) -> None:
    """PATCH /v1/admin/keys/<id> sets limits and expiry; null clears; absent is kept."""
    user = _new_user(client, admin)
    key = client.post(f"/v1/admin/users/{user['id']}/keys", json={}, headers=admin).get_json()
    path = f"/v1/admin/keys/{key['id']}"
    body = {"rpm_limit": 10, "tpm_limit": 500, "expires_at": "2099-06-01T00:00:00Z"}
    changed = client.patch(path, json=body, headers=admin).get_json()
    assert (changed["rpm_limit"], changed["tpm_limit"]) == (10, 500)
    assert changed["expires_at"].startswith("2099-06-01T00:00:00")
    cleared = client.patch(path, json={"rpm_limit": None}, headers=admin).get_json()
    assert (cleared["rpm_limit"], cleared["tpm_limit"]) == (None, 500)
    assert _key_works(client, key["key"])


@pytest.mark.parametrize(
    "body",
    [
        {"rpm_limit": 0},
        {"tpm_limit": 2**31},
        {"rpm_limit": "10"},
        {"expires_at": "2000-01-01T00:00:00Z"},
        {"prefix": "pq_x"},
    ],
)
def test_bad_key_bodies_are_422(
    client: FlaskClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    """Out-of-range limits, a past expiry or an unknown field answer 422 on create and patch."""
    user = _new_user(client, admin)
    keys_path = f"/v1/admin/users/{user['id']}/keys"
    error_of(client.post(keys_path, json=body, headers=admin), 422, "validation_error")
    key = client.post(keys_path, json={}, headers=admin).get_json()
    patch = client.patch(f"/v1/admin/keys/{key['id']}", json=body, headers=admin)
    error_of(patch, 422, "validation_error")


def test_unknown_key_is_404(client: FlaskClient, admin: dict[str, str]) -> None:
    """Revoking or patching an unknown or malformed key id answers 404."""
    for key_id in (str(uuid.uuid4()), "nope"):
        error_of(client.delete(f"/v1/admin/keys/{key_id}", headers=admin), 404, "not_found")
        patch = client.patch(f"/v1/admin/keys/{key_id}", json={"rpm_limit": 1}, headers=admin)
        error_of(patch, 404, "not_found")


def test_a_created_user_s_location_is_absolute_and_resolves(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    response = client.post("/v1/admin/users", json={"name": "located"}, headers=admin)
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith("http") and location.endswith(
        f"/v1/admin/users/{response.json['id']}"
    )
    assert client.get(location, headers=admin).get_json() == response.get_json()
