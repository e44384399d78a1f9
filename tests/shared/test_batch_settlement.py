"""The batch lifecycle below the API, on the real PostgreSQL: settling batches whose jobs are all
final (once, with their webhook messages in the same transaction), and expiring batches past
their completion window."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from sqlalchemy import func, select, update

from shared.db import get_session_factory, transaction
from shared.models import Batch, BatchStatus, Job, JobStatus, SpendCounter, WebhookMessage
from shared.repositories.batches import expire_overdue, settle_finished
from shared.repositories.job_leases import claim_job
from tests.conftest import Account
from tests.support.batches import HOLD, held_batch, subscribe

BASE = "http://api.test"
EVENTS = ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"]


def _finish_all(batch_id: uuid.UUID, status: str) -> None:
    with transaction() as session:
        session.execute(
            update(Job).where(Job.batch_id == batch_id).values(status=status, reserved_usd=0)
        )


def _batch_row(batch_id: uuid.UUID) -> Batch:
    with transaction() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return batch


def _messages(account: Account) -> list[WebhookMessage]:
    with transaction() as session:
        return list(
            session.scalars(
                select(WebhookMessage).where(WebhookMessage.user_id == uuid.UUID(account.user_id))
            )
        )


def test_settle_marks_a_finished_batch_completed_once(
    make_account: Callable[[str], Account],
) -> None:
    """A batch with an unfinished job is left open; once all are final it is completed, with one
    batch.completed message per subscribed endpoint carrying the batch; a second settle changes
    nothing and sends nothing."""
    alice = make_account("alice")
    subscribe(alice, EVENTS)
    subscribe(alice, ["job.succeeded"])
    batch_id = held_batch(alice)
    with transaction() as session:
        assert settle_finished(session, BASE, 100).batches == []
    _finish_all(batch_id, JobStatus.SUCCEEDED)
    with transaction() as session:
        done = settle_finished(session, BASE, 100)
    assert done.batches == [batch_id]
    assert len(done.webhooks) == 1
    batch = _batch_row(batch_id)
    assert batch.status == BatchStatus.COMPLETED
    assert batch.completed_at is not None
    [message] = _messages(alice)
    assert message.event_type == "batch.completed"
    body = json.loads(message.body)
    assert body["type"] == "batch.completed"
    assert body["data"]["batch"]["id"] == str(batch_id)
    assert body["data"]["batch"]["counts"]["succeeded"] == 3
    assert body["data"]["batch"]["results_url"] == f"{BASE}/v1/batches/{batch_id}/results"
    with transaction() as session:
        again = settle_finished(session, BASE, 100)
    assert (again.batches, again.webhooks) == ([], [])
    assert len(_messages(alice)) == 1


def test_a_batch_whose_every_job_failed_is_failed(make_account: Callable[[str], Account]) -> None:
    """Every job failed: the batch settles `failed` and announces batch.failed."""
    alice = make_account("alice")
    subscribe(alice, EVENTS)
    batch_id = held_batch(alice, 2)
    _finish_all(batch_id, JobStatus.FAILED)
    with transaction() as session:
        settle_finished(session, BASE, 100)
    assert _batch_row(batch_id).status == BatchStatus.FAILED
    assert [m.event_type for m in _messages(alice)] == ["batch.failed"]


def test_a_batch_locked_elsewhere_is_skipped(make_account: Callable[[str], Account]) -> None:
    """While another transaction holds the batch row (a cancel, another beat), settle skips it
    instead of waiting or settling it twice."""
    alice = make_account("alice")
    batch_id = held_batch(alice, 1)
    _finish_all(batch_id, JobStatus.SUCCEEDED)
    holder = get_session_factory()()
    try:
        holder.execute(select(Batch).where(Batch.id == batch_id).with_for_update())
        with transaction() as session:
            assert settle_finished(session, BASE, 100).batches == []
    finally:
        holder.rollback()
        holder.close()
    with transaction() as session:
        assert settle_finished(session, BASE, 100).batches == [batch_id]


def test_expiry_cancels_queued_jobs_and_releases_their_holds(
    make_account: Callable[[str], Account],
) -> None:
    """Past its window, an in-progress batch expires: queued jobs are cancelled with
    batch_expired and their holds released; a running job keeps running (and its hold); the
    batch announces batch.expired once."""
    alice = make_account("alice")
    subscribe(alice, ["batch.expired"])
    batch_id = held_batch(alice, 3)
    fresh = held_batch(alice, 1)
    with transaction() as session:
        running = session.scalars(
            select(Job.id).where(Job.batch_id == batch_id).order_by(Job.custom_id)
        ).first()
        assert running is not None
        # Taken from the backlog in its turn, then claimed.
        session.execute(update(Job).where(Job.id == running).values(dispatched_at=func.now()))
        assert claim_job(session, running, lease_s=60) is not None
        session.execute(
            update(Batch).where(Batch.id == batch_id).values(expires_at=Batch.created_at)
        )
    with transaction() as session:
        done = expire_overdue(session, BASE, 100)
    assert done.batches == [batch_id]
    assert len(done.cancelled_jobs) == 2
    batch = _batch_row(batch_id)
    assert (batch.status, batch.expired_at is not None) == (BatchStatus.EXPIRED, True)
    assert _batch_row(fresh).status == BatchStatus.IN_PROGRESS
    with transaction() as session:
        jobs = {j.id: j for j in session.scalars(select(Job).where(Job.batch_id == batch_id))}
        held = session.scalar(
            select(SpendCounter.held_usd).where(SpendCounter.user_id == uuid.UUID(alice.user_id))
        )
    assert jobs[running].status == JobStatus.RUNNING
    cancelled = [j for j in jobs.values() if j.id != running]
    assert {(j.status, j.error["code"], j.reserved_usd) for j in cancelled} == {
        (JobStatus.CANCELLED, "batch_expired", 0)
    }
    # The running job's and the fresh batch's holds remain.
    assert held == 2 * HOLD
    [message] = _messages(alice)
    assert json.loads(message.body)["data"]["batch"]["status"] == "expired"
    with transaction() as session:
        assert expire_overdue(session, BASE, 100).batches == []
        assert settle_finished(session, BASE, 100).batches == []
