"""GET /v1/jobs/<id>/attempts: every provider call made for a job, in order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from flask.testing import FlaskClient

from shared.db import transaction
from shared.repositories.attempts import AttemptRecord, record_attempt
from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account


def test_attempts_lists_each_call_in_order(client: FlaskClient, alice: Account) -> None:
    """GET /v1/jobs/<id>/attempts lists the job's attempts by number, with cost as a string."""
    job_id = client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()["id"]
    empty = client.get(f"/v1/jobs/{job_id}/attempts", headers=auth(alice))
    assert empty.status_code == 200
    assert empty.get_json() == {"object": "list", "data": []}
    now = datetime.now(UTC)
    with transaction() as session:
        for outcome, code, tokens, cost in (
            ("failed", "rate_limited", 0, Decimal(0)),
            ("succeeded", None, 12, Decimal("0.0000036")),
        ):
            record_attempt(
                session,
                job_id=uuid.UUID(job_id),
                user_id=uuid.UUID(alice.user_id),
                attempt=AttemptRecord(
                    provider="openai",
                    model="gpt-4o-mini",
                    outcome=outcome,
                    error_code=code,
                    error_message=code and "slow down",
                    latency_ms=40,
                    backoff_ms=0 if outcome == "failed" else 250,
                    input_tokens=tokens,
                    output_tokens=tokens,
                    cost_usd=cost,
                    started_at=now,
                    finished_at=now,
                ),
            )
    data = client.get(f"/v1/jobs/{job_id}/attempts", headers=auth(alice)).get_json()["data"]
    assert [a["number"] for a in data] == [1, 2]
    assert [a["outcome"] for a in data] == ["failed", "succeeded"]
    assert data[0]["error_code"] == "rate_limited" and data[0]["error_message"] == "slow down"
    assert data[1]["cost_usd"] == "0.0000036"
    assert (data[1]["input_tokens"], data[1]["output_tokens"]) == (12, 12)
    assert [(a["backoff_ms"], a["cached"]) for a in data] == [(0, False), (250, False)]
    assert [a["similarity"] for a in data] == [None, None]
    assert set(data[1]) == {
        "number",
        "provider",
        "model",
        "outcome",
        "error_code",
        "error_message",
        "latency_ms",
        "backoff_ms",
        "cached",
        "similarity",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "started_at",
        "finished_at",
    }


def test_attempts_of_someone_elses_job_is_404(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Another user's job has no attempts to show: 404 like an unknown id."""
    job_id = client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()["id"]
    bob = make_account("bob")
    error_of(client.get(f"/v1/jobs/{job_id}/attempts", headers=auth(bob)), 404, "not_found")
    error_of(client.get(f"/v1/jobs/{uuid.uuid4()}/attempts", headers=auth(alice)), 404, "not_found")
