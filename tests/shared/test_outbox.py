"""The outbox on a real Redis: a failed publish is not raised (the work is safe in PostgreSQL),
the oldest message still waiting in a queue is read the same way for jobs and webhooks, and a
Redis that lost its data is noticed at once. The cutoffs built from them are tested with the
dispatcher's queries (tests/shared/test_job_dispatch.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from shared import outbox
from shared.queueing import WEBHOOK_QUEUE, queue_for
from shared.redis_client import get_redis
from tests.conftest import Services


@pytest.fixture
def broker(clean: Services) -> Iterator[redis.Redis]:
    yield get_redis()


def test_published_jobs_wait_in_their_class_queue_oldest_first(broker: redis.Redis) -> None:
    first, second, high = (str(uuid.uuid4()) for _ in range(3))
    outbox.publish([(first, "normal"), (second, "normal"), (high, "high")])
    assert broker.llen(queue_for("normal")) == 2
    assert outbox.oldest_waiting_jobs() == {"high": high, "normal": first, "low": None}


def test_a_failed_publish_is_logged_not_raised(broker: redis.Redis) -> None:
    """The job is committed: the sweeper finds its stamp without a message and publishes it."""
    outbox.publish([(str(uuid.uuid4()), "no-such-priority")])
    assert all(broker.llen(queue_for(p)) == 0 for p in ("high", "normal", "low"))


def test_a_redis_that_lost_its_data_is_noticed_once(broker: redis.Redis) -> None:
    """The first ask after a flush says lost; the next one does not; each caller has its own."""
    assert outbox.broker_lost("sweep") is True
    assert outbox.broker_lost("sweep") is False
    assert outbox.broker_lost("webhooks") is True
    broker.flushdb()
    assert outbox.broker_lost("sweep") is True
    assert outbox.broker_lost("sweep") is False


def test_the_oldest_waiting_delivery_is_the_first_published(broker: redis.Redis) -> None:
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) is None
    outbox.publish_webhooks([("msg_first", 0), ("msg_second", 2)])
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) == "msg_first"
    broker.rpush(WEBHOOK_QUEUE, b"not a kombu message")
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) == ""
