"""Priority: high jobs submitted one by one while a worker drains a backlog of low ones.

The low backlog goes in as batches while the worker (1 x c64, 1 s provider latency) already
consumes; once it is busy, the high jobs are POSTed one at a time, 20 ms apart. Reported: the
high jobs' start latency (started_at - created_at) p50 and p99, per run. The worker is stopped
and the backlog cancelled after each run, so every run starts from the same state.
"""

from __future__ import annotations

import time

import requests

from bench.context import BenchContext
from bench.measure.job_timings import (
    database_now,
    finished_count,
    percentiles,
    start_latencies_ms,
    started_count,
)
from bench.promptq_client import batch_bodies, job_body, post_batch, submit
from bench.results import Comparison, Cost, ScenarioResult
from bench.scenarios.completion import wait_or_stall

LATENCY_MS = 1000.0
CONCURRENCY = 64
SPACING_S = 0.02


def _one_run(
    ctx: BenchContext, n: int, cost: Cost, session: requests.Session
) -> tuple[list[float], int]:
    """(the high jobs' start latencies, low jobs left unfinished) of one run."""
    stack, sizes = ctx.stack, ctx.sizes
    bodies = batch_bodies(sizes.priority_low_jobs, f"low-{n}", priority="low")
    workers = stack.workers(1, CONCURRENCY)
    try:
        with stack.db() as connection:
            since = database_now(connection)
            with ctx.window(workers, "worker", api=[stack.processes["api"]]) as usage:
                for body in bodies:
                    post_batch(stack.api_url, stack.keys[0], body)
                wait_or_stall(
                    lambda: started_count(connection, since) >= CONCURRENCY // 2,
                    60,
                    "the worker to be busy",
                )
                for i in range(sizes.priority_high_jobs):
                    submit(session, stack.api_url, stack.keys[1], job_body(f"high-{n}", i, "high"))
                    time.sleep(SPACING_S)
                wait_or_stall(
                    lambda: finished_count(connection, since, "high") >= sizes.priority_high_jobs,
                    120,
                    "the high jobs",
                )
            cost.add(usage, finished_count(connection, since))
            latencies = start_latencies_ms(connection, since, "high")
            left = sizes.priority_low_jobs - finished_count(connection, since, "low")
    finally:
        # The backlog is abandoned: the workers go with it and the next run starts afresh.
        stack.clear_jobs()
    return latencies, left


def run(ctx: BenchContext) -> list[ScenarioResult]:
    sizes = ctx.sizes
    p50 = Comparison("high start p50", "ms", lower_is_better=True)
    p99 = Comparison("high start p99", "ms", lower_is_better=True)
    cost = Cost("promptq")
    result = ScenarioResult(
        "priority",
        f"{sizes.priority_high_jobs} high jobs while 1 x c{CONCURRENCY} drains "
        f"{sizes.priority_low_jobs:,} low; start latency of the high jobs",
        [p50, p99],
        [cost],
        statement_kind="complete",
    )
    result.details.update(high_started=[], low_backlog_left=[])
    ctx.stack.set_sim(LATENCY_MS)
    session = requests.Session()
    for n in range(sizes.priority_runs):
        latencies, left = _one_run(ctx, n, cost, session)
        figures = percentiles(latencies)
        p50.promptq.append(figures["p50"])
        p99.promptq.append(figures["p99"])
        result.details["high_started"].append(len(latencies))
        result.details["low_backlog_left"].append(left)
    return [result]
