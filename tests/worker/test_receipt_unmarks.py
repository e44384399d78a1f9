"""Receipts unmark their jobs from a thread of their own, many to a round trip, and a failed
round trip does not stop the thread."""

from __future__ import annotations

import uuid

from devstack.processes import wait_until
from shared import outbox
from shared.redis_client import get_redis
from tests.conftest import Services
from worker.receipt_unmarks import receipt_unmarker


def _marked(job_ids: list[str]) -> set[str]:
    scores = get_redis().zmscore(outbox.ENQUEUED_KEY, job_ids)
    return {job_id for job_id, score in zip(job_ids, scores, strict=True) if score is not None}


def test_received_jobs_lose_their_marks_and_others_keep_theirs(clean: Services) -> None:
    jobs = [str(uuid.uuid4()) for _ in range(300)]
    outbox.publish([(job_id, "normal") for job_id in jobs])
    assert _marked(jobs) == set(jobs)
    unmarker = receipt_unmarker()
    for job_id in jobs[:250]:
        unmarker.add(job_id)
    wait_until(lambda: _marked(jobs) == set(jobs[250:]), timeout=10, what="250 unmarks")


def test_an_unmark_that_fails_leaves_the_thread_running(clean: Services) -> None:
    job = str(uuid.uuid4())
    outbox.publish([(job, "normal")])
    unmarker = receipt_unmarker()
    # A wrong type in the sorted set's place makes the ZREM fail, as a Redis error would.
    get_redis().rename(outbox.ENQUEUED_KEY, "promptq:test-marks")
    get_redis().set(outbox.ENQUEUED_KEY, "not a sorted set")
    unmarker.add(job)
    wait_until(lambda: unmarker.failures == 1, timeout=10, what="the failed unmark")
    get_redis().delete(outbox.ENQUEUED_KEY)
    get_redis().rename("promptq:test-marks", outbox.ENQUEUED_KEY)
    unmarker.add(job)
    wait_until(lambda: not _marked([job]), timeout=10, what="the next unmark")
