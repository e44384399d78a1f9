"""Measure a bare Celery worker's completion rate per pool, concurrency and prefetch.

Each configuration starts a real `celery worker` process on the bare app, enqueues
`concurrency * waves` tasks that each sleep `--task-seconds`, and reports completed tasks per
second against the ideal `concurrency / task_seconds`. Also counts MaxConnectionsError lines,
the failure of kombu's default 10-connection pool under an I/O pool with late acks.

    .venv/bin/python -m bench.celery_pools --runs 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.bare_celery import BROKER, DONE_KEY, sleep_task
from devstack.processes import BIN, ManagedProcess, wait_until


def _run_once(
    pool: str, concurrency: int, prefetch: int, max_connections: int, seconds: float, waves: int
) -> tuple[float, int, bool]:
    """(completed tasks per second, MaxConnectionsError lines, whether the run stalled)."""
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    worker = ManagedProcess(
        "bench-worker",
        [
            str(BIN / "celery"),
            "-A",
            "bench.bare_celery",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        {
            "BENCH_PREFETCH": str(prefetch),
            "BENCH_MAX_CONNECTIONS": str(max_connections),
            "BENCH_REDIS_URL": BROKER,
        },
        log_dir / "worker.log",
    ).start()
    try:
        # The queue must be consumed before the clock starts: wait for the worker's consumer.
        wait_until(
            lambda: client.exists("_kombu.binding.celery") == 1, timeout=60, what="the worker"
        )
        total = concurrency * waves
        started = time.monotonic()
        for _ in range(total):
            sleep_task.delay(seconds)
        stalled = False
        try:
            wait_until(
                lambda: int(client.get(DONE_KEY) or 0) >= total,
                timeout=seconds * waves * 4 + 30,
                interval=0.05,
                what="all tasks",
            )
        except TimeoutError:
            # A stall is a result too: report the rate it managed before the deadline.
            stalled = True
        rate = min(total, int(client.get(DONE_KEY) or 0)) / (time.monotonic() - started)
    finally:
        worker.stop()
    errors = worker.log_text().count("MaxConnectionsError")
    return rate, errors, stalled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", default="threads,gevent")
    parser.add_argument("--concurrency", default="50,200")
    parser.add_argument("--prefetch", default="1,2")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"broker {BROKER}; {args.waves} waves of 1 s tasks; median of {args.runs} runs")
    print(
        f"{'pool':8} {'conc':>5} {'prefetch':>8} {'maxconn':>7} {'tasks/s':>8} "
        f"{'ideal':>6} {'ratio':>6} {'MaxConnErr':>10}"
    )
    configs = itertools.product(
        args.pools.split(","),
        [int(c) for c in args.concurrency.split(",")],
        [int(p) for p in args.prefetch.split(",")],
    )
    for pool, concurrency, prefetch in configs:
        rates, errors, stalls = [], 0, 0
        for _ in range(args.runs):
            rate, errs, stalled = _run_once(
                pool, concurrency, prefetch, args.max_connections, args.task_seconds, args.waves
            )
            rates.append(rate)
            errors += errs
            stalls += stalled
        ideal = concurrency / args.task_seconds
        median = statistics.median(rates)
        print(
            f"{pool:8} {concurrency:>5} {prefetch:>8} {args.max_connections:>7} "
            f"{median:>8.1f} {ideal:>6.0f} {median / ideal:>6.2f} {errors:>10} "
            f"{stalls:>5}/{args.runs}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
