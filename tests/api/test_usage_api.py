"""GET /v1/usage: the caller's billed usage per UTC day and model, summed exactly in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import make_url, text

from shared.db import get_engine, transaction
from shared.models import Job, JobAttempt, UsageRecord
from tests.api.job_helpers import error_of
from tests.conftest import Account, Services


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.key}"}


def _bill(
    account: Account,
    when: datetime,
    model: str,
    cost: str,
    tokens: tuple[int, int] = (10, 5),
    provider: str = "openai",
) -> None:
    """One billed attempt (job, attempt and usage rows) at an explicit time."""
    user_id = uuid.UUID(account.user_id)
    with transaction() as session:
        job = Job(user_id=user_id, model=model, request={}, status="succeeded")
        session.add(job)
        session.flush()
        attempt = JobAttempt(
            job_id=job.id,
            number=1,
            provider=provider,
            model=model,
            outcome="success",
            latency_ms=1,
            started_at=when,
            finished_at=when,
        )
        session.add(attempt)
        session.flush()
        session.add(
            UsageRecord(
                user_id=user_id,
                job_id=job.id,
                attempt_id=attempt.id,
                provider=provider,
                model=model,
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                cost_usd=Decimal(cost),
                created_at=when,
            )
        )


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _two_days_two_models(alice: Account, bob: Account) -> None:
    haiku = {"provider": "anthropic"}
    _bill(alice, _at("2026-03-01T00:00:00+00:00"), "gpt-4o-mini", "0.0000012345", (100, 20))
    _bill(alice, _at("2026-03-01T23:59:59.999999+00:00"), "gpt-4o-mini", "0.0000007655", (1, 2))
    # 01:00 at UTC+05:00 is still the 1st in UTC.
    _bill(alice, _at("2026-03-02T01:00:00+05:00"), "claude-haiku-4-5", "0.1234567891", **haiku)
    _bill(alice, _at("2026-03-02T00:00:00+00:00"), "gpt-4o-mini", "1.0000000001", (7, 3))
    _bill(alice, _at("2026-03-02T12:00:00+00:00"), "claude-haiku-4-5", "0.000001", **haiku)
    # Outside the range or someone else's: never counted.
    _bill(alice, _at("2026-02-28T23:59:59.999999+00:00"), "gpt-4o-mini", "5")
    _bill(alice, _at("2026-03-03T00:00:00+00:00"), "gpt-4o-mini", "5")
    _bill(bob, _at("2026-03-01T12:00:00+00:00"), "gpt-4o-mini", "5")


EXPECTED = {
    "object": "usage",
    "start": "2026-03-01",
    "end": "2026-03-02",
    "data": [
        {
            "date": "2026-03-01",
            "model": "claude-haiku-4-5",
            "provider": "anthropic",
            "requests": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": "0.1234567891",
        },
        {
            "date": "2026-03-01",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "requests": 2,
            "input_tokens": 101,
            "output_tokens": 22,
            "cost_usd": "0.000002",
        },
        {
            "date": "2026-03-02",
            "model": "claude-haiku-4-5",
            "provider": "anthropic",
            "requests": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": "0.000001",
        },
        {
            "date": "2026-03-02",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "requests": 1,
            "input_tokens": 7,
            "output_tokens": 3,
            "cost_usd": "1.0000000001",
        },
    ],
    "totals": {
        "requests": 5,
        "input_tokens": 128,
        "output_tokens": 35,
        "cost_usd": "1.1234597892",
    },
}


def test_usage_is_exact_per_day_and_model(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Two days x two models: exact sums per UTC day and model, inclusive, caller's rows only."""
    _two_days_two_models(alice, make_account("bob"))
    response = client.get("/v1/usage?start=2026-03-01&end=2026-03-02", headers=_auth(alice))
    assert response.status_code == 200
    assert response.get_json() == EXPECTED


@pytest.fixture
def far_from_utc_sessions(services: Services) -> Iterator[None]:
    """Every new database session runs in UTC+14, so a local-date grouping would shift days."""
    database = make_url(services.database_url).database

    def alter(setting: str) -> None:
        with get_engine().begin() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" {setting}'))
        # Pooled connections keep their zone; only new ones read the database's setting.
        get_engine().dispose()

    alter("SET timezone = 'Pacific/Kiritimati'")
    try:
        yield
    finally:
        alter("RESET timezone")


def test_days_are_utc_whatever_the_session_time_zone(
    client: FlaskClient,
    alice: Account,
    make_account: Callable[[str], Account],
    far_from_utc_sessions: None,
) -> None:
    """Days are UTC days even when the database session's time zone is not UTC."""
    _two_days_two_models(alice, make_account("bob"))
    with get_engine().connect() as connection:
        assert connection.execute(text("SHOW timezone")).scalar_one() == "Pacific/Kiritimati"
    response = client.get("/v1/usage?start=2026-03-01&end=2026-03-02", headers=_auth(alice))
    assert response.get_json() == EXPECTED


def test_default_range_is_the_last_30_days(client: FlaskClient, alice: Account) -> None:
    """Without dates the range is the 30 UTC days ending today, and today's usage is in it."""
    now = datetime.now(UTC)
    _bill(alice, now, "gpt-4o-mini", "0.25")
    _bill(alice, now - timedelta(days=30), "gpt-4o-mini", "9")
    body = client.get("/v1/usage", headers=_auth(alice)).get_json()
    today = now.date()
    assert (body["start"], body["end"]) == (str(today - timedelta(days=29)), str(today))
    assert [(row["date"], row["cost_usd"]) for row in body["data"]] == [(str(today), "0.25")]
    assert body["totals"]["cost_usd"] == "0.25"


def test_one_date_given(client: FlaskClient, alice: Account) -> None:
    """start alone runs to today; end alone covers the 30 days ending on it."""
    today = datetime.now(UTC).date()
    start = client.get(f"/v1/usage?start={today - timedelta(days=3)}", headers=_auth(alice))
    assert start.get_json()["end"] == str(today)
    end = client.get("/v1/usage?end=2026-03-30", headers=_auth(alice)).get_json()
    assert (end["start"], end["end"]) == ("2026-03-01", "2026-03-30")


def test_empty_range_has_zero_totals(client: FlaskClient, alice: Account) -> None:
    """A range without usage answers no rows and zero totals."""
    body = client.get("/v1/usage?start=2026-01-01&end=2026-01-01", headers=_auth(alice))
    assert body.get_json()["data"] == []
    assert body.get_json()["totals"] == {
        "requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": "0",
    }


def test_a_range_of_366_days_is_allowed(client: FlaskClient, alice: Account) -> None:
    """The longest range, 366 days inclusive, is accepted."""
    end = date(2024, 1, 1) + timedelta(days=365)
    response = client.get(f"/v1/usage?start=2024-01-01&end={end}", headers=_auth(alice))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-03-02&end=2026-03-01",
        "start=2024-01-01&end=2025-01-01",
        "start=2026-3-1",
        "start=2026-02-30",
        "start=yesterday",
        "end=9999-12-31",
        "from=2026-01-01",
        "start=2026-01-01&start=2026-01-02",
    ],
)
def test_bad_query_is_422(client: FlaskClient, alice: Account, query: str) -> None:
    """Reversed or over-long ranges, malformed dates, unknown or repeated parameters: 422."""
    error = error_of(
        client.get(f"/v1/usage?{query}", headers=_auth(alice)), 422, "validation_error"
    )
    assert error["details"]


def test_usage_needs_a_key(client: FlaskClient, alice: Account) -> None:
    """Without a valid key the usage endpoint answers 401."""
    error_of(client.get("/v1/usage"), 401, "unauthorized")
    error_of(client.get("/v1/usage", headers={"Authorization": "Bearer pq_x"}), 401, "unauthorized")
