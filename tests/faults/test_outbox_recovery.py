"""Dispatched jobs whose message is gone: one stamped whose publish never happened (a crash
between the commit and the push), and one whose message a worker fetched and died before it
claimed the job. The sweeper publishes both again, well before the broker's visibility timeout.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import text

from shared.db import transaction
from shared.queueing import queue_for
from shared.redis_client import get_redis
from tests.faults.conftest import FAST_ENV, MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, insert_jobs

pytestmark = pytest.mark.e2e


def test_a_dispatched_job_whose_publish_never_happened_is_published_again(
    make_stack: MakeStack,
) -> None:
    """The job was stamped as dispatched and committed, and its publisher died before the
    push: no message exists. The sweeper finds a stamp older than the grace with an empty queue
    and publishes the job again."""
    make_stack(workers=1, concurrency=2)
    account = create_account("never-pushed")
    [job_id] = insert_jobs(account, 1, "gpt-4o-mini")
    with transaction() as session:
        session.execute(
            text("UPDATE jobs SET dispatched_at = now() WHERE id = :id"), {"id": job_id}
        )

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
    [job_id] = insert_jobs(account, 1, "gpt-4o-mini", published=True)
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
