"""What the API exports on GET /metrics.

Under gunicorn, every worker process writes its counters to files in PROMETHEUS_MULTIPROC_DIR
(api/gunicorn_conf.py sets and empties it) and a scrape of any one process sums them all:
Prometheus scrapes one address, not each forked process. Queue depths are read from Redis at
scrape time, so they are the broker's own figures, never a stale copy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from shared.backlog_gauge import BACKLOG_KEY
from shared.logging import get_logger
from shared.queueing import WEBHOOK_QUEUE, WORKER_QUEUES
from shared.redis_client import get_redis

log = get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
QUEUES: tuple[str, ...] = (*WORKER_QUEUES, WEBHOOK_QUEUE)

jobs_admitted = Counter(
    "promptq_jobs_admitted_total",
    "Jobs accepted, by priority and by how they came (job or batch).",
    ["priority", "source"],
)
jobs_refused = Counter(
    "promptq_jobs_refused_total",
    "Submissions refused, by the error code they got (rate_limited, budget_exceeded, ...).",
    ["reason"],
)
http_requests = Counter(
    "promptq_http_requests_total",
    "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"],
)
http_duration = Histogram(
    "promptq_http_request_duration_seconds",
    "Time to answer HTTP requests, by method and route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
)

long_polls_waiting = Gauge(
    "promptq_long_polls_waiting",
    "Requests parked in a long-poll (GET /v1/jobs/<id>?wait=N), summed over the live processes.",
    multiprocess_mode="livesum",
)


class QueueDepthCollector(Collector):
    """Messages waiting in each broker queue and the jobs waiting in PostgreSQL's backlog (the
    backlog gauge, shared/backlog_gauge.py), read in one pipelined round trip per scrape."""

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "promptq_queue_depth", "Messages waiting in each broker queue.", labels=["queue"]
        )
        backlog = GaugeMetricFamily(
            "promptq_backlog_depth",
            "Jobs waiting in PostgreSQL for the broker's window (the last sweep's count, plus "
            "admissions since, less dispatches).",
        )
        try:
            pipe = get_redis().pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
            pipe.get(BACKLOG_KEY)
            *lengths, waiting = pipe.execute()
        except Exception as exc:
            # Redis away: the scrape still answers, with the API's own metrics.
            log.warning("metrics.queue_depth_unavailable", error=repr(exc))
            return
        for queue, length in zip(QUEUES, lengths, strict=True):
            depth.add_metric([queue], int(length))
        yield depth
        backlog.add_metric([], max(0, int(waiting or 0)))
        yield backlog


_QUEUE_DEPTH = QueueDepthCollector()
_MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
if not _MULTIPROCESS:
    REGISTRY.register(_QUEUE_DEPTH)


def render() -> bytes:
    """The exposition text for one scrape: every gunicorn process's metrics summed."""
    if not _MULTIPROCESS:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(_QUEUE_DEPTH)
    return generate_latest(registry)
