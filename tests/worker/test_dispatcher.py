"""A job worker's dispatcher thread on the real PostgreSQL and Redis: it fills the window the
heartbeats size (at least its own worker's), publishes what it dispatched, keeps the backlog
gauge, and is woken by a finished job rather than only by its timer."""

from __future__ import annotations

from collections.abc import Callable

from devstack.processes import wait_until
from shared.backlog_gauge import BACKLOG_KEY, set_backlog
from shared.queueing import queue_for
from shared.redis_client import get_redis
from shared.settings import get_settings
from tests.conftest import Account
from tests.support.jobs import queued_job
from tests.support.workers import worker_alive
from worker.dispatcher import Dispatcher


def test_it_fills_the_window_the_heartbeats_size(make_account: Callable[[str], Account]) -> None:
    """Two workers of 3 slots alive: a window of 12 of 20 queued jobs, published, and the
    gauge down by 12."""
    user = make_account("dispatched")
    for _ in range(20):
        queued_job(user.user_id)
    worker_alive(slots=3, hostname="a@host")
    worker_alive(slots=3, hostname="b@host")
    set_backlog(get_redis(), 20)
    assert Dispatcher(get_settings()).dispatch_once() == 12
    assert get_redis().llen(queue_for("normal")) == 12
    assert get_redis().get(BACKLOG_KEY) == b"8"


def test_without_heartbeats_its_own_slots_make_the_window(
    make_account: Callable[[str], Account],
) -> None:
    """After Redis lost its data no heartbeat is left until the next beat: the dispatcher's own
    worker still counts."""
    user = make_account("own-slots")
    for _ in range(10):
        queued_job(user.user_id)
    dispatcher = Dispatcher(get_settings())
    dispatcher.start(slots=2)
    try:
        wait_until(
            lambda: get_redis().llen(queue_for("normal")) == 4,
            timeout=10,
            what="a window of 4 from the worker's own 2 slots",
        )
    finally:
        dispatcher.stop()


def test_a_wake_dispatches_before_the_timer(make_account: Callable[[str], Account]) -> None:
    """With a timer of a minute, a wake (a job finished) fills the window at once."""
    user = make_account("woken")
    settings = get_settings().model_copy(update={"dispatch_interval_s": 60.0})
    dispatcher = Dispatcher(settings)
    dispatcher.start(slots=1)
    try:
        queued_job(user.user_id)
        dispatcher.wake()
        wait_until(
            lambda: get_redis().llen(queue_for("normal")) == 1,
            timeout=5,
            what="the woken dispatch",
        )
    finally:
        dispatcher.stop()
