"""POST /v1/jobs/<id>/cancel: queued and running jobs stop, final ones refuse, and a job
cancelled while it ran is still charged for the call its worker made."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from shared.db import transaction
from shared.models import Job, JobStatus, UsageRecord
from shared.repositories.attempts import AttemptRecord, record_attempt
from shared.repositories.job_leases import Claim, Outcome, claim_job, finish_job
from tests.api.job_helpers import VALID, auth, error_of, reservation_of
from tests.conftest import Account

# Claims below take jobs the API dispatched: a worker must be alive for it to.
pytestmark = pytest.mark.usefixtures("worker_is_alive")


def _submit(client: FlaskClient, account: Account) -> str:
    response = client.post("/v1/jobs", json=VALID, headers=auth(account))
    assert response.status_code == 202
    return response.get_json()["id"]


def _claim(job_id: str) -> Claim | None:
    with transaction() as session:
        return claim_job(session, uuid.UUID(job_id), lease_s=60)


def _row(job_id: str) -> Job:
    with transaction() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job


def test_cancel_queued_job_releases_it_and_it_is_never_claimed(
    client: FlaskClient, alice: Account
) -> None:
    """A queued job cancels to `cancelled` with finished_at and no reservation, and a worker's
    claim (a message still in the queue) then finds nothing to run."""
    job_id = _submit(client, alice)
    assert _row(job_id).reserved_usd == reservation_of(VALID) > 0
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == job_id
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    assert _row(job_id).reserved_usd == 0
    assert _claim(job_id) is None
    assert _row(job_id).status == JobStatus.CANCELLED


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled"])
def test_cancel_of_a_final_job_is_409(client: FlaskClient, alice: Account, final: str) -> None:
    """A job that already finished cannot be cancelled: 409 naming its status, nothing changes."""
    job_id = _submit(client, alice)
    claim = _claim(job_id)
    assert claim is not None
    if final == "cancelled":
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice)).status_code == 200
    else:
        outcome = Outcome(JobStatus(final), None, None, 0, 0, Decimal(0))
        with transaction() as session:
            assert finish_job(session, claim, outcome)
    error = error_of(
        client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice)), 409, "job_not_cancellable"
    )
    assert final in error["message"]
    assert error["details"] == {"status": final}
    assert _row(job_id).status == final


def test_cancel_of_someone_elses_or_unknown_job_is_404(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Cancelling a job the caller does not own looks exactly like an unknown id, and the job
    keeps running its course."""
    job_id = _submit(client, alice)
    bob = make_account("bob")
    error_of(client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(bob)), 404, "not_found")
    error_of(client.post(f"/v1/jobs/{uuid.uuid4()}/cancel", headers=auth(bob)), 404, "not_found")
    error_of(client.post("/v1/jobs/nope/cancel", headers=auth(bob)), 404, "not_found")
    assert _row(job_id).status == JobStatus.QUEUED


def test_job_cancelled_while_running_is_charged_and_stays_cancelled(
    client: FlaskClient, alice: Account
) -> None:
    """Cancelling a running job keeps its reservation until the worker settles; the worker's
    fenced final write then records the attempt and usage it was billed for, drops the
    reservation, and leaves the status cancelled with no result."""
    job_id = _submit(client, alice)
    claim = _claim(job_id)
    assert claim is not None
    body = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice)).get_json()
    assert body["status"] == "cancelled"
    assert _row(job_id).reserved_usd == reservation_of(VALID)

    cost = Decimal("0.0000042")
    now = datetime.now(UTC)
    with transaction() as session:
        assert finish_job(
            session,
            claim,
            Outcome(JobStatus.SUCCEEDED, {"content": "late"}, None, 10, 5, cost),
        )
        record_attempt(
            session,
            job_id=claim.job_id,
            user_id=claim.user_id,
            attempt=AttemptRecord(
                provider="openai",
                model="gpt-4o-mini",
                outcome="succeeded",
                error_code=None,
                error_message=None,
                latency_ms=5,
                input_tokens=10,
                output_tokens=5,
                cost_usd=cost,
                started_at=now,
                finished_at=now,
            ),
        )
    job = _row(job_id)
    assert (job.status, job.result, job.reserved_usd) == (JobStatus.CANCELLED, None, 0)
    assert (job.input_tokens, job.output_tokens, job.cost_usd) == (10, 5, cost)
    assert job.lease_token is None
    with transaction() as session:
        usage = session.scalars(select(UsageRecord)).all()
    assert [(u.job_id, u.cost_usd) for u in usage] == [(claim.job_id, cost)]
    shown = client.get(f"/v1/jobs/{job_id}", headers=auth(alice)).get_json()
    assert (shown["status"], shown["cost_usd"]) == ("cancelled", "0.0000042")
