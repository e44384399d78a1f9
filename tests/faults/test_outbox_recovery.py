"""Jobs whose outbox mark lies: a mark that landed after the worker's unmark (the race that left
requeued jobs queued forever), and a message fetched by a worker that died before it registered
it. The sweeper publishes both again, well before the broker's visibility timeout."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared import outbox
from shared.db import transaction
from shared.queueing import publish_jobs, queue_for
from shared.redis_client import get_redis
from tests.faults.conftest import FAST_ENV, MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, insert_jobs

pytestmark = pytest.mark.e2e


def _requeued(job_id: str) -> bool:
    with transaction() as session:
        row = session.execute(
            text("SELECT status, not_before FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    return row.status == "queued" and row.not_before is not None


def test_a_mark_that_lands_after_the_claim_does_not_strand_the_job(make_stack: MakeStack) -> None:
    """The message is pushed and taken by a worker before its mark lands; the job is then
    handed back with a Retry-After. Its mark says "a message waits", but none does: the sweeper
    sees that the mark is older than anything waiting and publishes the job again."""
    stack = make_stack(workers=1, concurrency=2, env={"RETRY_INLINE_MAX_S": "1"})
    stack.set_faults({"model": "*", "kind": "rate_limit", "retry_after_s": 3})
    account = create_account("late-mark")
    [job_id] = insert_jobs(account, 1, "gpt-4o-mini", publish=False)
    publish_jobs([(job_id, "normal")])
    wait_until(lambda: _requeued(job_id), timeout=20, what="the job to be handed back")
    # The publisher's mark, late: after the worker's unmark on receipt.
    seconds, micros = get_redis().time()
    get_redis().zadd(outbox.ENQUEUED_KEY, {job_id: seconds + micros / 1_000_000})
    stack.clear_faults()

    wait_all_final([job_id], timeout=30)
    assert assert_settled([job_id]) == {"succeeded": 1}


def test_a_message_fetched_by_a_worker_that_died_is_published_again(
    make_stack: MakeStack,
) -> None:
    """A consumer took the message (it sits in kombu's unacked set, as it does between Redis
    handing it over and Celery registering it) and died: the job still finishes, long before
    the visibility timeout would give the message back."""
    stack = make_stack(workers=0)
    account = create_account("fetched-and-died")
    [job_id] = insert_jobs(account, 1, "gpt-4o-mini")
    broker = get_redis()
    raw = broker.rpop(queue_for("normal"))
    assert raw is not None
    tag = str(uuid.uuid4())
    broker.hset("unacked", tag, json.dumps([json.loads(raw), "", queue_for("normal")]))
    broker.zadd("unacked_index", {tag: time.time()})
    started = time.monotonic()
    stack.start_worker("worker", concurrency=2)

    wait_all_final([job_id], timeout=45)
    assert time.monotonic() - started < float(FAST_ENV["BROKER_VISIBILITY_TIMEOUT_S"])
    assert assert_settled([job_id]) == {"succeeded": 1}
