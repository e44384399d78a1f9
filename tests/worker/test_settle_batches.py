"""The settle_batches beat task on the real PostgreSQL and Redis: one run settles a finished
batch and expires an overdue one, and publishes their webhook deliveries after its commits."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Callable

import redis
from sqlalchemy import select, update

from shared.db import transaction
from shared.models import Batch, BatchStatus, Job, JobStatus, WebhookMessage
from shared.queueing import WEBHOOK_QUEUE
from tests.conftest import Account, Services
from tests.support.batches import held_batch, subscribe
from worker.tasks.settle_batches import settle_batches


def _published(services: Services) -> set[str]:
    broker = redis.Redis.from_url(services.redis_url)
    ids: set[str] = set()
    while (raw := broker.rpop(WEBHOOK_QUEUE)) is not None:
        message_id, _ = ast.literal_eval(json.loads(raw)["headers"]["argsrepr"])
        ids.add(message_id)
    return ids


def test_one_run_settles_and_expires_and_publishes(
    clean: Services, make_account: Callable[[str], Account]
) -> None:
    """A batch whose jobs are all final becomes completed and an overdue one expired; each
    event's message is committed and published; a second run does nothing more."""
    alice = make_account("alice")
    subscribe(alice, ["batch.completed", "batch.expired"])
    finished, overdue, fresh = held_batch(alice, 2), held_batch(alice, 2), held_batch(alice, 1)
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.batch_id == finished)
            .values(status=JobStatus.SUCCEEDED, reserved_usd=0)
        )
        session.execute(
            update(Batch).where(Batch.id == overdue).values(expires_at=Batch.created_at)
        )
    settle_batches()
    with transaction() as session:
        statuses = {row.id: row.status for row in session.execute(select(Batch.id, Batch.status))}
        messages = {
            m.id: m.event_type
            for m in session.scalars(
                select(WebhookMessage).where(WebhookMessage.user_id == uuid.UUID(alice.user_id))
            )
        }
    assert statuses == {
        finished: BatchStatus.COMPLETED,
        overdue: BatchStatus.EXPIRED,
        fresh: BatchStatus.IN_PROGRESS,
    }
    assert sorted(messages.values()) == ["batch.completed", "batch.expired"]
    assert _published(clean) == set(messages)
    settle_batches()
    assert _published(clean) == set()
