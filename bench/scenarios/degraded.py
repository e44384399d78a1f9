"""Degraded provider: 30% of calls fail (429 with Retry-After on one model, 500 on the other),
against a healthy run of the same jobs beside it. Every job should still succeed; the figure is
the throughput ratio degraded / healthy at 1 x c64 and 1 s latency."""

from __future__ import annotations

import requests

from bench.context import BenchContext
from bench.results import Comparison, Cost, ScenarioResult
from bench.scenarios.completion import LATENCY_MS, promptq_run

CONCURRENCY = 64
SHAPE = (1, CONCURRENCY)
MODELS = ("gpt-4o-mini", "gpt-4o")
FAULTS = (
    {"model": "gpt-4o-mini", "kind": "rate_limit", "rate": 0.3},
    {"model": "gpt-4o", "kind": "server_error", "rate": 0.3},
)
HEALTHY = "healthy provider"


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, sizes = ctx.stack, ctx.sizes
    jobs = sizes.degraded_waves * CONCURRENCY
    rate = Comparison("jobs/s", "jobs/s", baseline_name=HEALTHY)
    degraded_cost, healthy_cost = Cost("promptq, degraded"), Cost(f"promptq, {HEALTHY}")
    result = ScenarioResult(
        "degraded provider",
        f"{jobs} jobs, 1 x c{CONCURRENCY}, 1 s latency, 30% 429/500 (ratio: to a healthy run)",
        [rate],
        [degraded_cost, healthy_cost],
        statement_kind="complete",
    )
    result.details.update(failed=[], unfinished=[], injected_faults=[])
    try:
        for n in range(sizes.degraded_runs):
            stack.set_sim(LATENCY_MS)
            healthy = promptq_run(ctx, SHAPE, jobs, f"healthy-{n}", healthy_cost, MODELS)
            rate.baseline.append(healthy.jobs_per_s)
            stack.set_sim(LATENCY_MS, *FAULTS)
            degraded = promptq_run(ctx, SHAPE, jobs, f"degraded-{n}", degraded_cost, MODELS)
            rate.promptq.append(degraded.jobs_per_s)
            result.details["failed"].append(degraded.failed)
            result.details["unfinished"].append(degraded.unfinished)
            stats = requests.get(f"{stack.sim_url}/sim/stats", timeout=10).json()
            result.details["injected_faults"].append(stats.get("faults_by_kind"))
            requests.post(f"{stack.sim_url}/sim/reset", timeout=10).raise_for_status()
    finally:
        stack.set_sim(LATENCY_MS)
    return [result]
