"""The outbox's marks on a real Redis: marked before pushed, trusted only while their message may
still wait in its list, and a Redis that lost its data noticed at once."""

from __future__ import annotations

import threading
import time
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


def _server_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def test_a_publish_marks_its_jobs_before_it_pushes_their_messages(broker: redis.Redis) -> None:
    """Redis executes the mark before the push, so a worker that receives the message at once
    always unmarks after the mark (the race that left requeued jobs queued forever)."""
    seen: list[str] = []
    monitor_ready = threading.Event()
    job_id = str(uuid.uuid4())

    def watch() -> None:
        with broker.monitor() as monitor:
            monitor_ready.set()
            for command in monitor.listen():
                seen.append(command["command"])
                if command["command"].startswith("LPUSH") or len(seen) > 200:
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert monitor_ready.wait(5)
    outbox.publish([(job_id, "normal")])
    watcher.join(10)
    marks = [i for i, c in enumerate(seen) if c.startswith("ZADD") and job_id in c]
    pushes = [i for i, c in enumerate(seen) if c.startswith(f"LPUSH {queue_for('normal')}")]
    assert marks and pushes, seen
    assert marks[0] < pushes[0]


def test_marks_of_messages_still_waiting_are_trusted(broker: redis.Redis) -> None:
    """Jobs whose messages wait in their list are not published again, however many."""
    jobs = [(str(uuid.uuid4()), "normal") for _ in range(3)]
    outbox.publish(jobs)
    assert broker.llen(queue_for("normal")) == 3
    assert outbox.unpublished([(uuid.UUID(j), p) for j, p in jobs]) == []


def test_an_unmarked_job_is_published_again(broker: redis.Redis) -> None:
    """A job whose message was received (and so unmarked) has no message any more."""
    job = (uuid.uuid4(), "high")
    outbox.publish([(str(job[0]), "high")])
    outbox.forget([job[0]])
    assert outbox.unpublished([job]) == [job]


def test_a_mark_older_than_the_oldest_waiting_message_is_stale(broker: redis.Redis) -> None:
    """A mark left by a publish that never pushed (or a message fetched by a worker killed
    before it registered the message) is found while a younger message waits in the list."""
    orphan, waiting = uuid.uuid4(), uuid.uuid4()
    broker.zadd(outbox.ENQUEUED_KEY, {str(orphan): _server_now(broker) - 60})
    outbox.publish([(str(waiting), "normal")])
    due = [(orphan, "normal"), (waiting, "normal")]
    assert outbox.unpublished(due) == [(orphan, "normal")]


def test_with_an_empty_list_only_fresh_marks_are_trusted(broker: redis.Redis) -> None:
    """Nothing waits at `low`: an old mark is stale, one a publisher set a moment ago is not
    (its push may be on its way)."""
    old, fresh = uuid.uuid4(), uuid.uuid4()
    now = _server_now(broker)
    broker.zadd(outbox.ENQUEUED_KEY, {str(old): now - outbox.STALE_MARGIN_S - 1, str(fresh): now})
    assert outbox.unpublished([(old, "low"), (fresh, "low")]) == [(old, "low")]


def test_a_failed_publish_leaves_no_mark(broker: redis.Redis) -> None:
    """A push that fails after its mark takes the mark back, so the sweeper publishes the job
    at its next pass instead of when the mark grows old."""
    job_id = str(uuid.uuid4())
    outbox.publish([(job_id, "no-such-priority")])
    assert broker.zscore(outbox.ENQUEUED_KEY, job_id) is None


def test_marks_older_than_a_day_are_dropped(broker: redis.Redis) -> None:
    """Marks whose unmark failed do not pile up for ever."""
    ancient = str(uuid.uuid4())
    broker.zadd(outbox.ENQUEUED_KEY, {ancient: time.time() - outbox.MARK_MAX_AGE_S - 60})
    outbox.unpublished([(uuid.uuid4(), "normal")])
    assert broker.zscore(outbox.ENQUEUED_KEY, ancient) is None


def test_a_redis_that_lost_its_data_is_noticed_once(broker: redis.Redis) -> None:
    """The first ask after a flush says lost; the next one does not; each caller has its own."""
    assert outbox.broker_lost("sweep") is True
    assert outbox.broker_lost("sweep") is False
    assert outbox.broker_lost("webhooks") is True
    broker.flushdb()
    assert outbox.broker_lost("sweep") is True
    assert outbox.broker_lost("sweep") is False


def test_the_oldest_waiting_delivery_is_the_first_published(broker: redis.Redis) -> None:
    assert outbox.oldest_waiting_delivery() is None
    outbox.publish_webhooks([("msg_first", 0), ("msg_second", 2)])
    assert outbox.oldest_waiting_delivery() == "msg_first"
    broker.rpush(WEBHOOK_QUEUE, b"not a kombu message")
    assert outbox.oldest_waiting_delivery() == ""
