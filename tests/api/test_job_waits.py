"""The API process's long-poll subscriber on a real Redis: an announcement wakes its job's
waiters only, and a lost subscription wakes everyone (what was announced meanwhile is gone)."""

from __future__ import annotations

import uuid

import redis

from api.job_waits import JobWaits
from devstack.processes import wait_until
from shared import job_announcements
from shared.redis_client import get_redis
from tests.conftest import Services

SUBSCRIBER = f"test-job-waits-{uuid.uuid4().hex[:8]}"


def _named_client(services: Services) -> redis.Redis:
    return redis.Redis.from_url(services.redis_url, client_name=SUBSCRIBER)


def test_an_announcement_wakes_the_job_s_waiters_only(clean: Services) -> None:
    waits = JobWaits(lambda: _named_client(clean))
    with waits.watching("job-a") as a, waits.watching("job-a") as a2, waits.watching("b") as b:
        wait_until(lambda: waits.subscriptions == 1, timeout=10, what="the subscription")
        a.clear(), a2.clear(), b.clear()
        job_announcements.announce(["job-a", "job-c"])
        assert a.wait(5) and a2.wait(5)
        assert not b.is_set()
        assert waits.waiting() == 3
    assert waits.waiting() == 0


def test_a_lost_subscription_wakes_every_waiter_and_resubscribes(clean: Services) -> None:
    waits = JobWaits(lambda: _named_client(clean))
    with waits.watching("job-a") as woken:
        wait_until(lambda: waits.subscriptions == 1, timeout=10, what="the subscription")
        woken.clear()
        # As a Redis restart would: the server drops the subscriber's connection (only this
        # test's: other processes may share the server).
        for client in get_redis().client_list(_type="pubsub"):
            if client["name"] == SUBSCRIBER:
                get_redis().client_kill_filter(_id=client["id"])
        wait_until(lambda: waits.subscriptions == 2, timeout=10, what="the resubscription")
        assert woken.wait(5)
        woken.clear()
        job_announcements.announce(["job-a"])
        assert woken.wait(5)
