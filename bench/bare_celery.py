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
QUEUE = "celery"
DONE_KEY = "bench:done"
# "start end" per finished task, so a run's throughput is measured between its first start
# and its last finish, as promptq's is from its job rows.
TIMES_KEY = "bench:times"

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
    started = time.time()
    time.sleep(seconds)
    pipe = _counter.pipeline(transaction=False)
    pipe.incr(DONE_KEY)
    pipe.rpush(TIMES_KEY, f"{started} {time.time()}")
    pipe.execute()


def use_broker(url: str) -> None:
    """Point this process's publishes at `url` (the bench picks its Redis database at run
    time; the workers it starts read BENCH_REDIS_URL)."""
    app.conf.broker_url = url


def publish_sleep(seconds: float) -> None:
    """Publish one sleep task the way promptq publishes run_job: through the anonymous exchange
    straight onto the queue's list, so no binding is looked up in Redis per message."""
    app.send_task(
        "bench.sleep", args=[seconds], queue=QUEUE, exchange="", routing_key=QUEUE, declare=[]
    )


def publish_sleeps(seconds: float, count: int) -> None:
    """Publish `count` sleep tasks over one producer connection (the bench's bulk admission)."""
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(
                "bench.sleep",
                args=[seconds],
                queue=QUEUE,
                exchange="",
                routing_key=QUEUE,
                declare=[],
                producer=producer,
            )
