"""A deep backlog (issue 14): a million queued jobs (the quick set: 100,000) in PostgreSQL.

Reported: POST /v1/jobs throughput with one key on an empty system and with the backlog
(target: within 10%); Redis' memory with the backlog and a worker keeping the window full
(target: under 50 MB); and each query of fair dispatch timed against the backlog, 100 times:
the dispatcher's fill of the window, the sweeper's lost-message search and its backlog count
(target: dispatcher queries p99 under 20 ms). The backlog goes in by one INSERT ... SELECT per
100,000 rows, not through the API: its admission is not what is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import redis
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from bench import drivers
from bench.context import BenchContext
from bench.measure.job_timings import percentiles
from bench.results import Comparison, ScenarioResult
from bench.scenarios.completion import wait_or_stall
from shared.models import Job
from shared.queueing import JOB_QUEUE_ORDER
from shared.repositories.job_dispatch import (
    IN_FLIGHT_SQL,
    backlog_depth,
    dispatch_next,
    redispatch_lost,
)
from shared.settings import normalize_database_url

CHUNK = 100_000
TIMED = 100
ROOM = 16
SLOW_LATENCY_MS = 5000.0

_FILL = """
INSERT INTO jobs (id, user_id, status, priority, model, fallbacks, request, metadata,
                  reserved_usd, cache, input_tokens, output_tokens, cost_usd, deliveries,
                  queued_at, created_at)
SELECT gen_random_uuid(), %s, 'queued', 'normal', 'gpt-4o-mini', '[]',
       jsonb_build_object('messages', jsonb_build_array(
           jsonb_build_object('role', 'user', 'content', 'deep ' || g)), 'max_tokens', 32),
       '{}', 0, false, 0, 0, 0, 0, now(), now()
FROM generate_series(1, %s) g
"""


def _accept_rps(ctx: BenchContext, key: str) -> float:
    stack, sizes = ctx.stack, ctx.sizes
    report = drivers.load(
        f"{stack.api_url}/v1/jobs",
        sizes.accept_connections,
        duration=sizes.accept_seconds,
        keys=[key],
        idempotency=True,
    )
    return float(report["rps"])


def _fill(ctx: BenchContext, user_id: str, jobs: int) -> float:
    """Seconds to insert `jobs` queued, undispatched jobs of `user_id`."""
    started = time.monotonic()
    with ctx.stack.db() as connection:
        for start in range(0, jobs, CHUNK):
            connection.execute(_FILL, (user_id, min(CHUNK, jobs - start)))
        connection.execute("ANALYZE jobs")
    return time.monotonic() - started


def _timed(engine: Engine, operation: Callable[[Session], object]) -> list[float]:
    """Milliseconds of each of TIMED runs of `operation(session)` and its commit."""
    times = []
    for _ in range(TIMED):
        with Session(engine) as session:
            started = time.perf_counter()
            operation(session)
            session.commit()
            times.append((time.perf_counter() - started) * 1000)
    return times


def _dispatch_times(engine: Engine) -> tuple[list[float], list[int]]:
    """Milliseconds of each of TIMED fills of a window with ROOM places free (the in-flight
    count read before, outside the timing), and how many each dispatched."""
    times, dispatched = [], []
    for _ in range(TIMED):
        with Session(engine) as session:
            flying = session.scalar(
                select(func.count()).select_from(Job).where(text(IN_FLIGHT_SQL))
            )
            session.commit()
            started = time.perf_counter()
            dispatched.append(len(dispatch_next(session, int(flying or 0) + ROOM)))
            session.commit()
            times.append((time.perf_counter() - started) * 1000)
    return times, dispatched


def _lost(session: Session) -> None:
    now = session.scalar(select(func.now()))
    assert now is not None
    redispatch_lost(
        session, dict.fromkeys(("high", "normal", "low"), now - timedelta(seconds=30)), 5000
    )


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, sizes = ctx.stack, ctx.sizes
    jobs = sizes.deep_backlog_jobs
    accept = Comparison("accepted jobs/s, deep backlog", "jobs/s", baseline_name="empty system")
    memory = Comparison("Redis used memory", "MB", lower_is_better=True)
    dispatch_p99 = Comparison("dispatch (fill 16) p99", "ms", lower_is_better=True)
    lost_p99 = Comparison("lost-message search p99", "ms", lower_is_better=True)
    depth_p99 = Comparison("backlog count p99", "ms", lower_is_better=True)
    result = ScenarioResult(
        "deep backlog",
        f"{jobs:,} queued jobs in PostgreSQL: accept with one key against an empty system "
        "(target within 10%), Redis memory with a worker keeping the window full (target "
        "< 50 MB), fair dispatch's queries (target p99 < 20 ms)",
        [accept, memory, dispatch_p99, lost_p99, depth_p99],
    )
    stack.clear_jobs()
    key = stack.keys[4]
    # Unmeasured: the API's pools and caches warm up before the empty system's runs, which would
    # otherwise pay for it and flatter the deep backlog's.
    _accept_rps(ctx, key)
    for _ in range(sizes.runs):
        accept.baseline.append(_accept_rps(ctx, key))
    result.details["fill_s"] = _fill(ctx, stack.user_ids[3], jobs)
    for _ in range(sizes.runs):
        accept.promptq.append(_accept_rps(ctx, key))

    # A worker keeps the window full (its calls are slow, so the backlog hardly moves).
    stack.set_sim(SLOW_LATENCY_MS)
    client = redis.Redis.from_url(stack.promptq_redis_url)
    stack.workers(1, 16)

    def waiting() -> int:
        return sum(client.llen(q) for q in JOB_QUEUE_ORDER)

    # The reading's moment: 16 slots busy and 16 messages waiting (a window of 32).
    wait_or_stall(lambda: waiting() >= 16, 30, "the window to fill")
    memory.promptq.append(client.info("memory")["used_memory"] / 1e6)
    result.details["messages_waiting"] = waiting()
    stack.stop_workers()

    engine = create_engine(normalize_database_url(stack.database_url))
    with Session(engine) as session:
        result.details["backlog_at_timing"] = backlog_depth(session)

    times, dispatched = _dispatch_times(engine)
    dispatch_p99.promptq.append(percentiles(times)["p99"])
    lost_p99.promptq.append(percentiles(_timed(engine, _lost))["p99"])
    depth_p99.promptq.append(percentiles(_timed(engine, backlog_depth))["p99"])
    result.details["dispatched_per_fill"] = sorted(set(dispatched))
    engine.dispose()
    with stack.db() as connection:
        connection.execute("TRUNCATE jobs CASCADE")
    return [result]
