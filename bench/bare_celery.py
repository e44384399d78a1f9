"""A bare Celery app (no promptq code) whose task sleeps, as the baseline for pool measurements.

Configured from the environment so the benchmark can start workers with other settings:
BENCH_REDIS_URL, BENCH_PREFETCH, BENCH_MAX_CONNECTIONS.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DONE_KEY = "bench:done"

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "1")),
    broker_transport_options={
        "max_connections": int(os.environ.get("BENCH_MAX_CONNECTIONS", "10")),
        "visibility_timeout": 3600,
    },
    worker_hijack_root_logger=False,
)
_counter = redis.Redis.from_url(BROKER)


@app.task(name="bench.sleep")
def sleep_task(seconds: float) -> None:
    """Stand-in for a model call: wait on I/O, then count completion."""
    time.sleep(seconds)
    _counter.incr(DONE_KEY)
