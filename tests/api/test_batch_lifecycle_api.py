"""GET /v1/batches (cursor paged), POST /v1/batches/<id>/cancel and the completion window,
through the Flask app on the real Postgres and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from shared.db import transaction
from shared.models import Job, JobStatus, SpendCounter
from shared.repositories.batches import settle_finished
from shared.repositories.job_leases import claim_job
from tests.api.job_helpers import VALID, auth, error_of, reservation_of, reserved_total
from tests.conftest import Account

# Claims below take jobs the API dispatched: a worker must be alive for it to.
pytestmark = pytest.mark.usefixtures("worker_is_alive")


def _batch(n: int, **fields: Any) -> dict[str, Any]:
    return {"jobs": [{**VALID, "custom_id": f"row-{i}"} for i in range(n)], **fields}


def _submit(client: FlaskClient, account: Account, n: int = 2, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/batches", json=_batch(n, **fields), headers=auth(account))
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _held(account: Account) -> Decimal:
    with transaction() as session:
        return session.scalar(
            select(SpendCounter.held_usd).where(SpendCounter.user_id == uuid.UUID(account.user_id))
        )


def _claim_one(batch_id: str) -> uuid.UUID:
    with transaction() as session:
        job_id = session.scalars(
            select(Job.id).where(Job.batch_id == uuid.UUID(batch_id)).order_by(Job.custom_id)
        ).first()
        assert job_id is not None
        assert claim_job(session, job_id, lease_s=60) is not None
    return job_id


def test_listing_is_newest_first_and_cursor_paged(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Pages of `limit` batches, newest first, never repeating or skipping one; other users'
    batches are not listed."""
    made = [_submit(client, alice, 1)["id"] for _ in range(5)]
    _submit(client, make_account("bob"), 1)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/batches", query_string=query, headers=auth(alice)).get_json()
        assert page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [b["id"] for b in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    first = client.get("/v1/batches", headers=auth(alice)).get_json()["data"][0]
    assert first["counts"] == {
        "queued": 1,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 1,
    }
    assert first["status"] == "in_progress"


def test_bad_listing_queries_are_422(client: FlaskClient, alice: Account) -> None:
    """A malformed cursor or an out-of-range limit is a JSON validation error."""
    for query in ({"cursor": "nope"}, {"limit": 0}, {"limit": 101}):
        response = client.get("/v1/batches", query_string=query, headers=auth(alice))
        error_of(response, 422, "validation_error")


def test_cancel_queued_batch_releases_every_reservation(
    client: FlaskClient, alice: Account
) -> None:
    """A batch of queued jobs is cancelled at once: each job cancelled with the batch's reason,
    every reservation released, the batch `cancelled` with cancelled_at."""
    batch = _submit(client, alice, 3)
    assert reserved_total(alice) == 3 * reservation_of(VALID) > 0
    assert _held(alice) == 3 * reservation_of(VALID)
    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["cancelled_at"] is not None
    assert body["counts"]["cancelled"] == 3
    assert reserved_total(alice) == 0
    assert _held(alice) == 0
    with transaction() as session:
        errors = session.scalars(select(Job.error).where(Job.batch_id == uuid.UUID(batch["id"])))
        assert {e["code"] for e in errors} == {"batch_cancelled"}


def test_cancel_with_a_running_job_is_cancelling_until_it_ends(
    client: FlaskClient, alice: Account
) -> None:
    """The running job keeps its reservation and runs on; the batch is `cancelling` until the
    beat sees every job final, then `cancelled`."""
    batch = _submit(client, alice, 2)
    running = _claim_one(batch["id"])
    body = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice)).get_json()
    assert body["status"] == "cancelling"
    assert body["counts"]["running"] == 1
    assert body["counts"]["cancelled"] == 1
    assert _held(alice) == reservation_of(VALID)
    again = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice))
    assert again.get_json()["status"] == "cancelling"
    with transaction() as session:
        settle_finished(session, "http://api.test", 100)
        session.execute(
            update(Job).where(Job.id == running).values(status=JobStatus.SUCCEEDED, reserved_usd=0)
        )
    with transaction() as session:
        settle_finished(session, "http://api.test", 100)
    done = client.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "cancelled"
    assert done["counts"]["succeeded"] == 1


def test_cancelling_a_settled_batch_is_409(client: FlaskClient, alice: Account) -> None:
    """A batch that is already cancelled (or completed) refuses with batch_not_cancellable."""
    batch = _submit(client, alice, 1)
    client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice))
    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice))
    error = error_of(response, 409, "batch_not_cancellable")
    assert error["details"] == {"status": "cancelled"}


def test_cancelling_a_completed_batch_is_409(client: FlaskClient, alice: Account) -> None:
    """Once settled `completed`, cancel refuses and changes nothing."""
    batch = _submit(client, alice, 1)
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.batch_id == uuid.UUID(batch["id"]))
            .values(status=JobStatus.SUCCEEDED, reserved_usd=0)
        )
        settle_finished(session, "http://api.test", 100)
    response = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice))
    assert error_of(response, 409, "batch_not_cancellable")["details"] == {"status": "completed"}
    after = client.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert (after["status"], after["cancelled_at"]) == ("completed", None)


def test_cancelling_another_users_batch_is_404(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Someone else's batch and unknown ids answer 404, and nothing is cancelled."""
    batch = _submit(client, alice, 1)
    bob = make_account("bob")
    for batch_id in (batch["id"], str(uuid.uuid4()), "not-a-uuid"):
        response = client.post(f"/v1/batches/{batch_id}/cancel", headers=auth(bob))
        error_of(response, 404, "not_found")
    assert client.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()["status"] == (
        "in_progress"
    )


def test_completion_window_sets_expires_at(client: FlaskClient, alice: Account) -> None:
    """expires_at is created_at plus the asked window, or the default setting's day."""
    asked = _submit(client, alice, 1, completion_window_s=3600)
    default = _submit(client, alice, 1)
    for body, seconds in ((asked, 3600), (default, 86_400)):
        created = datetime.fromisoformat(body["created_at"])
        expires = datetime.fromisoformat(body["expires_at"])
        assert abs((expires - created) - timedelta(seconds=seconds)) < timedelta(seconds=1)
        assert body["completed_at"] is None and body["expired_at"] is None


@pytest.mark.parametrize("window", [0, 59, 7 * 86_400 + 1, "soon", None])
def test_bad_completion_windows_are_422(
    client: FlaskClient, alice: Account, window: object
) -> None:
    """Outside a minute to a week, or not an integer: 422 naming the field, nothing admitted."""
    response = client.post(
        "/v1/batches", json=_batch(1, completion_window_s=window), headers=auth(alice)
    )
    if window is None:
        # null means "the default", as leaving it out does.
        assert response.status_code == 202
        return
    error = error_of(response, 422, "validation_error")
    assert "completion_window_s" in str(error["details"])
    assert reserved_total(alice) == 0
