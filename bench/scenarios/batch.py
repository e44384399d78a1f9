"""Batch: one POST /v1/batches of up to 10,000 jobs; the time to its 202 and jobs admitted per
second. No worker runs; there is no bare counterpart (the issue's table has none)."""

from __future__ import annotations

from bench.context import BenchContext
from bench.promptq_client import batch_bodies, post_batch
from bench.results import Comparison, Cost, ScenarioResult


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, jobs = ctx.stack, ctx.sizes.batch_jobs
    seconds = Comparison("seconds to the 202", "s", lower_is_better=True)
    rate = Comparison("jobs/s admitted", "jobs/s")
    cost = Cost("promptq")
    result = ScenarioResult(
        f"batch of {jobs:,}",
        f"one POST /v1/batches of {jobs:,} jobs, one key",
        [rate, seconds],
        [cost],
        statement_kind="batch",
    )
    # One batch unmeasured first: the API's first big request pays for imports and pools.
    post_batch(stack.api_url, stack.keys[0], batch_bodies(100, "batch-warmup")[0])
    for n in range(ctx.sizes.batch_runs):
        (body,) = batch_bodies(jobs, f"batch-{n}")
        with ctx.window([stack.processes["api"]], "api") as usage:
            elapsed = post_batch(stack.api_url, stack.keys[0], body)
        cost.add(usage, jobs)
        seconds.promptq.append(elapsed)
        rate.promptq.append(jobs / elapsed)
    stack.clear_jobs()
    return [result]
