"""Usage grouped by model, tag, team or day: GET /v1/usage?group_by= for the caller, and GET
/v1/admin/usage across users (per user by default, or one user's, or one team's)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.db import transaction
from shared.models import Job, JobAttempt, UsageRecord
from tests.api.job_helpers import auth, error_of
from tests.conftest import Account
from tests.support.teams import make_team

RANGE = "start=2026-03-01&end=2026-03-02"


def _bill(
    account: Account,
    when: str,
    model: str,
    cost: str,
    tags: list[str],
    team_id: uuid.UUID | None = None,
) -> None:
    """One billed attempt (job, attempt and usage rows) at an explicit time."""
    user_id = uuid.UUID(account.user_id)
    at = datetime.fromisoformat(when)
    with transaction() as session:
        job = Job(
            user_id=user_id, model=model, request={}, status="succeeded", tags=tags, team_id=team_id
        )
        session.add(job)
        session.flush()
        attempt = JobAttempt(
            job_id=job.id,
            number=1,
            provider="openai",
            model=model,
            outcome="success",
            latency_ms=1,
            started_at=at,
            finished_at=at,
        )
        session.add(attempt)
        session.flush()
        session.add(
            UsageRecord(
                user_id=user_id,
                job_id=job.id,
                attempt_id=attempt.id,
                provider="openai",
                model=model,
                input_tokens=10,
                output_tokens=5,
                cost_usd=Decimal(cost),
                created_at=at,
            )
        )


@pytest.fixture
def billed(make_account: Callable[[str], Account]) -> dict[str, Any]:
    """alice and bob in team eng, carol in none; five billed attempts in range, one outside."""
    alice, bob, carol = make_account("alice"), make_account("bob"), make_account("carol")
    eng = make_team("eng", alice, bob)
    _bill(alice, "2026-03-01T10:00:00+00:00", "gpt-4o-mini", "0.1", ["a", "b"], eng)
    _bill(alice, "2026-03-02T10:00:00+00:00", "gpt-4o", "0.2", ["a"], eng)
    # Billed before alice joined the team: no team was charged.
    _bill(alice, "2026-03-02T11:00:00+00:00", "gpt-4o-mini", "0.4", [])
    _bill(bob, "2026-03-01T12:00:00+00:00", "gpt-4o", "1", ["b"], eng)
    _bill(carol, "2026-03-02T12:00:00+00:00", "gpt-4o-mini", "2", ["a"])
    _bill(alice, "2026-03-03T00:00:00+00:00", "gpt-4o-mini", "50", ["a"], eng)
    return {"alice": alice, "bob": bob, "carol": carol, "eng": str(eng)}


def _rows(response: Any) -> list[tuple[str | None, str | None, int, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["object"] == "usage.groups"
    return [(r["key"], r["name"], r["requests"], r["cost_usd"]) for r in body["data"]]


def _mine(client: FlaskClient, account: Account, group_by: str) -> Any:
    return client.get(f"/v1/usage?{RANGE}&group_by={group_by}", headers=auth(account))


def test_the_callers_usage_per_group(client: FlaskClient, billed: dict[str, Any]) -> None:
    """alice's three attempts in range, per model, tag (a two-tag job under each, the untagged
    one under null, so the rows add up to more than the totals), team and UTC day."""
    alice = billed["alice"]
    assert _rows(_mine(client, alice, "model")) == [
        ("gpt-4o", None, 1, "0.2"),
        ("gpt-4o-mini", None, 2, "0.5"),
    ]
    by_tag = _mine(client, alice, "tag")
    assert _rows(by_tag) == [("a", None, 2, "0.3"), ("b", None, 1, "0.1"), (None, None, 1, "0.4")]
    assert by_tag.get_json()["totals"] == {
        "requests": 3,
        "input_tokens": 30,
        "output_tokens": 15,
        "cost_usd": "0.7",
    }
    assert _rows(_mine(client, alice, "team")) == [
        (billed["eng"], "eng", 2, "0.3"),
        (None, None, 1, "0.4"),
    ]
    day = _mine(client, alice, "day")
    assert _rows(day) == [("2026-03-01", None, 1, "0.1"), ("2026-03-02", None, 2, "0.6")]
    assert day.get_json()["group_by"] == "day"
    assert (day.get_json()["start"], day.get_json()["end"]) == ("2026-03-01", "2026-03-02")


def test_without_group_by_the_answer_is_unchanged(
    client: FlaskClient, billed: dict[str, Any]
) -> None:
    body = client.get(f"/v1/usage?{RANGE}", headers=auth(billed["carol"])).get_json()
    assert body["object"] == "usage"
    assert [(r["date"], r["model"], r["cost_usd"]) for r in body["data"]] == [
        ("2026-03-02", "gpt-4o-mini", "2")
    ]


def test_a_bad_group_by_is_422(client: FlaskClient, billed: dict[str, Any]) -> None:
    """group_by=user is the operator's only."""
    error = error_of(_mine(client, billed["alice"], "user"), 422, "validation_error")
    assert error["details"][0]["field"] == "group_by"


def test_the_admin_usage_across_users(
    client: FlaskClient, billed: dict[str, Any], admin_auth: dict[str, str]
) -> None:
    """Per user by default; per team across users; only one team's or one user's usage."""
    alice, bob, carol, eng = billed["alice"], billed["bob"], billed["carol"], billed["eng"]

    def admin(query: str) -> Any:
        return client.get(f"/v1/admin/usage?{RANGE}&{query}", headers=admin_auth)

    by_user = sorted(_rows(admin("")), key=lambda row: row[1] or "")
    assert by_user == [
        (alice.user_id, "alice", 3, "0.7"),
        (bob.user_id, "bob", 1, "1"),
        (carol.user_id, "carol", 1, "2"),
    ]
    assert _rows(admin("group_by=team")) == [(eng, "eng", 3, "1.3"), (None, None, 2, "2.4")]
    team_tags = admin(f"group_by=tag&team_id={eng}")
    assert _rows(team_tags) == [("a", None, 2, "0.3"), ("b", None, 2, "1.1")]
    assert team_tags.get_json()["totals"]["cost_usd"] == "1.3"
    assert _rows(admin(f"group_by=model&user_id={bob.user_id}")) == [("gpt-4o", None, 1, "1")]
    assert _rows(admin(f"group_by=day&team_id={uuid.uuid4()}")) == []
    error_of(client.get("/v1/admin/usage", headers=auth(alice)), 401, "unauthorized")
    error_of(admin("team_id=eng"), 422, "validation_error")
