"""Fair dispatch (issue 14): three measurements on one worker shape of 200 ms calls.

- fair start: user A has a long `normal` backlog (a batch, 1 x c16 draining it); user B then
  submits jobs one by one, evenly over a spread of seconds. Reported: B's start latency
  (started_at - created_at) p50 and p99 (target p99 <= 2 s), and the most messages the broker
  held meanwhile (the window: 2 per slot).
- A alone: A's backlog's completion rate with the window against the undispatched design
  (DISPATCH_WINDOW_PER_SLOT=0: every job published at once, as before fair dispatch), runs
  interleaved (target: at most 5% lower).
- user cap: a user with max_concurrency 5 runs a batch on 3 workers of 8 slots; reported: the
  simulator's most calls in flight for that user's model (target: exactly 5).
"""

from __future__ import annotations

import time

import psycopg
import redis
import requests

from bench.context import BenchContext
from bench.measure.job_timings import completion, database_now, finished_count, percentiles
from bench.promptq_client import batch_bodies, job_body, post_batch, submit
from bench.results import Comparison, Cost, ScenarioResult
from bench.scenarios.completion import wait_or_stall
from shared.queueing import JOB_QUEUE_ORDER

LATENCY_MS = 200.0
CONCURRENCY = 16
UNDISPATCHED = {"DISPATCH_WINDOW_PER_SLOT": "0"}
CAPPED_MODEL, CAP = "gpt-4o", 5


def _start_latencies_ms(connection: psycopg.Connection, job_ids: list[str]) -> list[float]:
    rows = connection.execute(
        "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM jobs "
        "WHERE id = ANY(%s::uuid[]) AND started_at IS NOT NULL",
        (job_ids,),
    ).fetchall()
    return [float(r[0]) for r in rows]


def _fair_start(ctx: BenchContext, n: int, cost: Cost) -> tuple[list[float], int, int]:
    """(B's start latencies, the most messages waiting in the broker, B's jobs submitted)."""
    stack, sizes = ctx.stack, ctx.sizes
    broker = redis.Redis.from_url(stack.promptq_redis_url)
    workers = stack.workers(1, CONCURRENCY)
    session = requests.Session()
    spacing = sizes.fair_spread_s / sizes.fair_light_jobs
    most_waiting = 0
    ids: list[str] = []
    try:
        with stack.db() as connection:
            since = database_now(connection)
            with ctx.window(workers, "worker", api=[stack.processes["api"]]) as usage:
                for body in batch_bodies(sizes.fair_heavy_jobs, f"heavy-{n}"):
                    post_batch(stack.api_url, stack.keys[0], body)
                wait_or_stall(
                    lambda: finished_count(connection, since) >= CONCURRENCY,
                    60,
                    "the heavy backlog to drain",
                )
                for i in range(sizes.fair_light_jobs):
                    ids.append(submit(session, stack.api_url, stack.keys[1], job_body("b", i)))
                    most_waiting = max(most_waiting, sum(broker.llen(q) for q in JOB_QUEUE_ORDER))
                    time.sleep(spacing)  # the submissions' pace, the scenario's input
                wait_or_stall(
                    lambda: len(_start_latencies_ms(connection, ids)) >= len(ids),
                    60,
                    "B's jobs to start",
                )
            cost.add(usage, finished_count(connection, since))
            latencies = _start_latencies_ms(connection, ids)
    finally:
        stack.clear_jobs()
    return latencies, most_waiting, len(ids)


def _alone(ctx: BenchContext, n: int, env: dict[str, str] | None, cost: Cost) -> float:
    """A's batch on 1 x c16: completed jobs per second from first start to last finish."""
    stack, sizes = ctx.stack, ctx.sizes
    workers = stack.workers(1, CONCURRENCY, env)
    with stack.db() as connection:
        since = database_now(connection)
        with ctx.window(workers, "worker", api=[stack.processes["api"]]) as usage:
            for body in batch_bodies(sizes.fair_alone_jobs, f"alone-{n}-{bool(env)}"):
                post_batch(stack.api_url, stack.keys[0], body)
            wait_or_stall(
                lambda: finished_count(connection, since) >= sizes.fair_alone_jobs,
                sizes.fair_alone_jobs / CONCURRENCY * LATENCY_MS / 1000 * 10 + 60,
                "A's jobs",
            )
        done = completion(connection, since)
    cost.add(usage, done.succeeded)
    if done.unfinished:
        stack.clear_jobs()
    return done.jobs_per_s


def _capped(ctx: BenchContext, n: int) -> int:
    """The simulator's most calls in flight for the capped user's model."""
    stack, sizes = ctx.stack, ctx.sizes
    stack.set_share(2, max_concurrency=CAP)
    stack.workers(3, 8)
    stack.reset_sim_stats()
    try:
        with stack.db() as connection:
            since = database_now(connection)
            for body in batch_bodies(sizes.fair_capped_jobs, f"capped-{n}", models=(CAPPED_MODEL,)):
                post_batch(stack.api_url, stack.keys[2], body)
            wait_or_stall(
                lambda: finished_count(connection, since) >= sizes.fair_capped_jobs,
                sizes.fair_capped_jobs / CAP * LATENCY_MS / 1000 * 10 + 60,
                "the capped user's jobs",
            )
        return int(stack.sim_stats()["max_in_flight_by_model"].get(CAPPED_MODEL, 0))
    finally:
        stack.set_share(2, max_concurrency=None)
        stack.clear_jobs()


def run(ctx: BenchContext) -> list[ScenarioResult]:
    sizes = ctx.sizes
    ctx.stack.set_sim(LATENCY_MS)
    p50 = Comparison("B start p50", "ms", lower_is_better=True)
    p99 = Comparison("B start p99", "ms", lower_is_better=True)
    fair_cost = Cost("promptq")
    fair = ScenarioResult(
        "fair start",
        f"user A: {sizes.fair_heavy_jobs:,} normal jobs queued on 1 x c{CONCURRENCY}, "
        f"{LATENCY_MS:g} ms calls; user B: {sizes.fair_light_jobs} normal jobs over "
        f"{sizes.fair_spread_s:g} s; B's start latency (target p99 <= 2,000 ms)",
        [p50, p99],
        [fair_cost],
        statement_kind="complete",
    )
    fair.details.update(most_messages_waiting=[], light_jobs_started=[])
    for n in range(sizes.fair_runs):
        latencies, most_waiting, submitted = _fair_start(ctx, n, fair_cost)
        figures = percentiles(latencies)
        p50.promptq.append(figures["p50"])
        p99.promptq.append(figures["p99"])
        fair.details["most_messages_waiting"].append(most_waiting)
        fair.details["light_jobs_started"].append(f"{len(latencies)}/{submitted}")

    rate = Comparison("A alone jobs/s", "jobs/s", baseline_name="undispatched (window off)")
    windowed, undispatched = Cost("promptq"), Cost("promptq, window off")
    alone = ScenarioResult(
        "A alone",
        f"{sizes.fair_alone_jobs:,} jobs of one user on 1 x c{CONCURRENCY}, "
        f"{LATENCY_MS:g} ms calls, against DISPATCH_WINDOW_PER_SLOT=0 (target >= 0.95x)",
        [rate],
        [windowed, undispatched],
        statement_kind="complete",
    )
    for n in range(sizes.fair_runs):
        rate.promptq.append(_alone(ctx, n, None, windowed))
        rate.baseline.append(_alone(ctx, n, UNDISPATCHED, undispatched))

    peak = Comparison("capped user's calls in flight, max", "calls")
    capped = ScenarioResult(
        "user cap",
        f"max_concurrency {CAP}, {sizes.fair_capped_jobs} jobs on 3 x c8, {LATENCY_MS:g} ms "
        f"calls; the simulator's most in flight for them (target exactly {CAP})",
        [peak],
    )
    for n in range(sizes.fair_runs):
        peak.promptq.append(_capped(ctx, n))
    return [fair, alone, capped]
