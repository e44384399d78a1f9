"""The API's scrape-time gauges on the real Redis: each broker queue's messages and the backlog
gauge (jobs waiting in PostgreSQL for the broker's window)."""

from __future__ import annotations

from api.metrics import QueueDepthCollector
from shared.backlog_gauge import BACKLOG_KEY
from shared.redis_client import get_redis
from tests.conftest import Services


def _gauges() -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in QueueDepthCollector().collect()
    }


def test_the_backlog_is_read_at_the_scrape(clean: Services) -> None:
    get_redis().set(BACKLOG_KEY, 7)
    get_redis().lpush("jobs.low", "a", "b")
    gauges = _gauges()
    assert gauges["promptq_backlog_depth"] == [({}, 7)]
    assert ({"queue": "jobs.low"}, 2) in gauges["promptq_queue_depth"]


def test_a_gauge_run_below_zero_reads_as_none_waiting(clean: Services) -> None:
    """Dispatchers subtract between sweeps; a count below zero means nothing waits."""
    get_redis().set(BACKLOG_KEY, -3)
    assert _gauges()["promptq_backlog_depth"] == [({}, 0)]
    get_redis().delete(BACKLOG_KEY)
    assert _gauges()["promptq_backlog_depth"] == [({}, 0)]
