"""Budgets: admission reserves each job's worst case against the user's daily and monthly
budgets, settlement moves it to usage, cancellation releases it; on the real Postgres."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from shared.db import transaction
from shared.models import Job, JobStatus, UsageRecord
from shared.repositories.attempts import AttemptRecord, record_attempt
from shared.repositories.job_leases import Claim, Outcome, claim_job, finish_job
from shared.repositories.sweeper import expire_leases
from tests.api.job_helpers import (
    VALID,
    auth,
    error_of,
    job_count,
    reservation_of,
    reserved_total,
    set_budgets,
)
from tests.conftest import Account

BODY: dict[str, Any] = {**VALID, "max_tokens": 200, "fallbacks": ["claude-haiku-4-5"]}

# Claims below take jobs the API dispatched: a worker must be alive for it to.
pytestmark = pytest.mark.usefixtures("worker_is_alive")


def _submit(client: FlaskClient, account: Account, body: dict[str, Any] = BODY) -> Any:
    return client.post("/v1/jobs", json=body, headers=auth(account))


def _seconds_until(moment: datetime) -> int:
    return math.ceil((moment - datetime.now(UTC)).total_seconds())


def _settle(job_id: str, cost: Decimal) -> None:
    """What the worker does: claim, then one final transaction with the attempt and usage."""
    with transaction() as session:
        claim = claim_job(session, uuid.UUID(job_id), lease_s=60)
    assert claim is not None
    now = datetime.now(UTC)
    with transaction() as session:
        assert finish_job(
            session, claim, Outcome(JobStatus.SUCCEEDED, {"content": "ok"}, None, 100, 50, cost)
        )
        record_attempt(
            session,
            job_id=claim.job_id,
            user_id=claim.user_id,
            attempt=AttemptRecord(
                "openai", "gpt-4o-mini", "succeeded", None, None, 9, 100, 50, cost, now, now
            ),
        )


def test_reservation_is_the_worst_case_over_model_and_fallbacks(
    client: FlaskClient, alice: Account
) -> None:
    """A job reserves max attempts x the dearest of its models at an upper bound of its prompt
    and its max_tokens; its own smaller max_cost_usd caps that."""
    job = _submit(client, alice).get_json()
    with transaction() as session:
        row = session.get(Job, uuid.UUID(job["id"]))
        assert row is not None
        # claude-haiku-4-5 is dearer than gpt-4o-mini: ("Hi" 2 bytes + 16 + 16) in, 200 out, x3.
        assert row.reserved_usd == reservation_of(BODY) == Decimal("0.003102")
    capped = _submit(client, alice, {**BODY, "max_cost_usd": "0.0001"}).get_json()
    with transaction() as session:
        assert session.get(Job, uuid.UUID(capped["id"])).reserved_usd == Decimal("0.0001")


def test_daily_budget_refuses_with_429_and_retry_after_midnight(
    client: FlaskClient, alice: Account
) -> None:
    """With a daily budget of exactly two reservations, two jobs are admitted and the third is
    429 budget_exceeded saying which budget, its amount and what remains, Retry-After until the
    UTC day ends, and no row."""
    reservation = reservation_of(BODY)
    set_budgets(alice, daily=reservation * 2 + Decimal("0.000001"))
    assert [_submit(client, alice).status_code for _ in range(2)] == [202, 202]
    refused = _submit(client, alice)
    error = error_of(refused, 429, "budget_exceeded")
    assert "daily budget of $0.006205" in error["message"]
    assert error["details"]["remaining_usd"] == "0.000001"
    assert error["details"]["requested_usd"] == "0.003102"
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(refused.headers["Retry-After"]) - _seconds_until(midnight + timedelta(1))) <= 5
    assert job_count(alice) == 2


def test_monthly_budget_counts_settled_usage_and_retries_next_month(
    client: FlaskClient, alice: Account
) -> None:
    """Settled usage counts towards the monthly budget in place of its reservation (which drops
    to 0 in the same transaction); past the budget, Retry-After runs to the next UTC month."""
    first = _submit(client, alice).get_json()
    cost = Decimal("0.0012")
    _settle(first["id"], cost)
    assert reserved_total(alice) == 0
    with transaction() as session:
        assert session.scalar(select(func.sum(UsageRecord.cost_usd))) == cost

    set_budgets(alice, monthly=cost + reservation_of(BODY))
    assert _submit(client, alice).status_code == 202
    refused = _submit(client, alice)
    error = error_of(refused, 429, "budget_exceeded")
    assert error["details"]["budget"] == "monthly"
    assert error["details"]["used_usd"] == str(cost + reservation_of(BODY))
    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert abs(int(refused.headers["Retry-After"]) - _seconds_until(next_month)) <= 5


def test_cancelling_a_queued_job_gives_its_reservation_back(
    client: FlaskClient, alice: Account
) -> None:
    """A budget that holds one job admits another once the first is cancelled while queued."""
    set_budgets(alice, daily=reservation_of(BODY))
    job = _submit(client, alice).get_json()
    error_of(_submit(client, alice), 429, "budget_exceeded")
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(alice)).status_code == 200
    assert _submit(client, alice).status_code == 202


def test_running_cancelled_job_holds_budget_only_while_its_lease_lives(
    client: FlaskClient, alice: Account
) -> None:
    """A job cancelled while running keeps its reservation for its worker to settle; once the
    sweeper finds the worker's lease run out (a dead worker never settles) the budget stops
    counting it."""
    set_budgets(alice, daily=reservation_of(BODY))
    job = _submit(client, alice).get_json()
    with transaction() as session:
        claim: Claim | None = claim_job(session, uuid.UUID(job["id"]), lease_s=60)
    assert claim is not None
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(alice)).status_code == 200
    error_of(_submit(client, alice), 429, "budget_exceeded")
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == claim.job_id)
            .values(lease_expires_at=text("now() - interval '1 second'"))
        )
    error_of(_submit(client, alice), 429, "budget_exceeded")
    with transaction() as session:
        expire_leases(session, max_deliveries=5)
    assert _submit(client, alice).status_code == 202


def test_users_without_budgets_are_not_limited(client: FlaskClient, alice: Account) -> None:
    """No budget means no ceiling, even with a huge max_tokens on the dearest model."""
    body = {**VALID, "model": "claude-sonnet-4-5", "max_tokens": 32768}
    assert [_submit(client, alice, body).status_code for _ in range(3)] == [202] * 3


def test_concurrent_admissions_never_overspend(app: Flask, alice: Account) -> None:
    """60 jobs submitted at once by 12 threads against a budget of exactly 7 reservations: 7 are
    admitted, 53 refused budget_exceeded, and 7 rows exist."""
    set_budgets(alice, daily=reservation_of(BODY) * 7)

    def submit(_: int) -> int:
        return app.test_client().post("/v1/jobs", json=BODY, headers=auth(alice)).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(submit, range(60)))
    assert statuses == {202: 7, 429: 53}
    assert job_count(alice) == 7
    assert reserved_total(alice) == reservation_of(BODY) * 7
