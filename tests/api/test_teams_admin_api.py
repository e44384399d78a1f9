"""The operator's teams, /v1/admin/teams, and a user's team through PATCH /v1/admin/users/<id>."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.api.job_helpers import auth, error_of
from tests.conftest import Account


def _team(client: FlaskClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/admin/teams", json={"name": "eng", **body}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"].endswith(f"/v1/admin/teams/{response.get_json()['id']}")
    return response.get_json()


def test_teams_are_created_listed_and_budgeted(
    client: FlaskClient, admin_auth: dict[str, str]
) -> None:
    """A team answers with its exact budgets; PATCH sets one and clears another (null), keeping
    what is left out; a taken name is 409; an unknown id 404. Creation and each budget change
    are audited (as no user's)."""
    team = _team(client, admin_auth, daily_budget_usd="12.50")
    assert (team["object"], team["name"], team["daily_budget_usd"]) == ("team", "eng", "12.5")
    assert team["monthly_budget_usd"] is None
    error_of(
        client.post("/v1/admin/teams", json={"name": "eng"}, headers=admin_auth),
        409,
        "already_exists",
    )
    patched = client.patch(
        f"/v1/admin/teams/{team['id']}", json={"monthly_budget_usd": "300"}, headers=admin_auth
    ).get_json()
    assert (patched["daily_budget_usd"], patched["monthly_budget_usd"]) == ("12.5", "300")
    cleared = client.patch(
        f"/v1/admin/teams/{team['id']}", json={"daily_budget_usd": None}, headers=admin_auth
    ).get_json()
    assert (cleared["daily_budget_usd"], cleared["monthly_budget_usd"]) == (None, "300")
    assert client.get(f"/v1/admin/teams/{team['id']}", headers=admin_auth).get_json() == cleared
    _team(client, admin_auth, name="ops")
    listed = client.get("/v1/admin/teams", headers=admin_auth).get_json()
    assert [t["name"] for t in listed["data"]] == ["eng", "ops"]
    error_of(client.get("/v1/admin/teams/nope", headers=admin_auth), 404, "not_found")
    audited = client.get(
        f"/v1/admin/audit?target_type=team&target_id={team['id']}", headers=admin_auth
    ).get_json()["data"]
    assert [(e["action"], e["user_id"], e["changes"]) for e in audited] == [
        ("team.budget_changed", None, {"daily_budget_usd": {"before": "12.5", "after": None}}),
        ("team.budget_changed", None, {"monthly_budget_usd": {"before": None, "after": "300"}}),
        (
            "team.created",
            None,
            {
                "name": {"before": None, "after": "eng"},
                "daily_budget_usd": {"before": None, "after": "12.5"},
                "monthly_budget_usd": {"before": None, "after": None},
            },
        ),
    ]
    error_of(
        client.patch(
            f"/v1/admin/teams/{team['id']}", json={"daily_budget_usd": "-1"}, headers=admin_auth
        ),
        422,
        "validation_error",
    )


def test_a_user_joins_and_leaves_a_team(
    client: FlaskClient, admin_auth: dict[str, str], alice: Account
) -> None:
    """PATCH team_id puts the user in the team, null takes them out, an unknown team is a 422
    naming team_id; a field left out keeps the team. Each change is audited."""
    team = _team(client, admin_auth)
    user_url = f"/v1/admin/users/{alice.user_id}"
    joined = client.patch(user_url, json={"team_id": team["id"]}, headers=admin_auth).get_json()
    assert joined["team_id"] == team["id"]
    kept = client.patch(user_url, json={"weight": 2}, headers=admin_auth).get_json()
    assert kept["team_id"] == team["id"]
    error = error_of(
        client.patch(
            user_url,
            json={"team_id": "00000000-0000-0000-0000-000000000000"},
            headers=admin_auth,
        ),
        422,
        "validation_error",
    )
    assert error["details"][0]["field"] == "team_id"
    left = client.patch(user_url, json={"team_id": None}, headers=admin_auth).get_json()
    assert left["team_id"] is None
    audited = client.get("/v1/admin/audit?action=user.team_changed", headers=admin_auth)
    assert [e["changes"] for e in audited.get_json()["data"]] == [
        {"team_id": {"before": team["id"], "after": None}},
        {"team_id": {"before": None, "after": team["id"]}},
    ]


def test_teams_need_the_admin_key(
    client: FlaskClient, admin_auth: dict[str, str], alice: Account
) -> None:
    error_of(client.get("/v1/admin/teams", headers=auth(alice)), 401, "unauthorized")
    error_of(
        client.post("/v1/admin/teams", json={"name": "x"}, headers=auth(alice)), 401, "unauthorized"
    )
