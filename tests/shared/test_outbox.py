"""The outbox on a real Redis: a failed publish is not raised (the work is safe in PostgreSQL),
the oldest message still waiting in a queue is read the same way for jobs and webhooks, and a
Redis that lost its data is noticed at once. The cutoffs built from them are tested with the
dispatcher's queries (tests/shared/test_job_dispatch.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from shared import outbox, worker_heartbeats
from shared.broker_epoch import broker_lost
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
    """The first ask after a flush says since when Redis holds its present data; the next one
    says nothing; each caller has its own."""
    assert broker_lost(broker, "sweep") is not None
    assert broker_lost(broker, "sweep") is None
    assert broker_lost(broker, "webhooks") is not None
    broker.flushdb()
    assert broker_lost(broker, "sweep") is not None
    assert broker_lost(broker, "sweep") is None


def test_the_epoch_is_when_a_worker_first_saw_the_present_data(broker: redis.Redis) -> None:
    """A worker's heartbeat dates the data soon after a loss; the sweeper asking later is told
    that time, not its own, so jobs dispatched in between are not taken for lost."""
    before = datetime.now(UTC)
    worker_heartbeats.beat(broker, "w1", 4, ttl_s=15)
    beaten = datetime.now(UTC)
    dated = datetime.fromtimestamp(float(broker.get("promptq:epoch") or 0), tz=UTC)
    lost_at = broker_lost(broker, "sweep")
    assert lost_at == dated and before <= lost_at <= beaten
    worker_heartbeats.beat(broker, "w1", 4, ttl_s=15)
    broker.delete("promptq:epoch:sweep")
    assert broker_lost(broker, "sweep") == lost_at


def test_the_oldest_waiting_delivery_is_the_first_published(broker: redis.Redis) -> None:
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) is None
    outbox.publish_webhooks([("msg_first", 0), ("msg_second", 2)])
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) == "msg_first"
    broker.rpush(WEBHOOK_QUEUE, b"not a kombu message")
    assert outbox.oldest_waiting(WEBHOOK_QUEUE) == ""
