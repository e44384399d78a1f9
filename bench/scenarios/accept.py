"""Accept: POST /v1/jobs under load from the load generator, against baseline (a).

Each round runs promptq with one key, the bare API, then promptq with the load spread over 8
keys (8 users), so both promptq figures have a bare run beside them for their ratio. Every
request carries its own Idempotency-Key; the keys' rate limits and the users' budgets are on.
No worker runs: accepting is all that is measured (the bare API's messages are not consumed
either).
"""

from __future__ import annotations

from typing import Any

from bench import drivers
from bench.context import BenchContext
from bench.measure.profiler import profiled
from bench.results import Comparison, Cost, ScenarioResult

BARE = "bare API (a)"
WARMUP_S = 1.0


def _measured_load(
    ctx: BenchContext, url: str, api_name: str, keys: list[str], cost: Cost, seconds: float
) -> dict[str, Any]:
    api = ctx.stack.processes[api_name]
    with ctx.window([api], "api") as usage:
        report = drivers.load(
            url, ctx.sizes.accept_connections, duration=seconds, keys=keys, idempotency=True
        )
    cost.add(usage, report["responses"], client_cpu_s=report["cpu_s"])
    return report


def _scenario(name: str, description: str) -> tuple[ScenarioResult, list[Comparison], Cost]:
    comparisons = [
        Comparison("accepted jobs/s", "jobs/s", baseline_name=BARE),
        Comparison("latency p50", "ms", baseline_name=BARE, lower_is_better=True),
        Comparison("latency p99", "ms", baseline_name=BARE, lower_is_better=True),
    ]
    cost = Cost("promptq")
    result = ScenarioResult(name, description, comparisons, [cost], statement_kind="accept")
    result.details.update(load_generator_cpu_share=[], status=[])
    return result, comparisons, cost


def _record(result: ScenarioResult, comparisons: list[Comparison], report: dict[str, Any]) -> None:
    comparisons[0].promptq.append(report["rps"])
    comparisons[1].promptq.append(report["latency_ms"]["p50"])
    comparisons[2].promptq.append(report["latency_ms"]["p99"])
    result.details["load_generator_cpu_share"].append(report["cpu_share"])
    result.details["status"].append(report["status"])


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, sizes = ctx.stack, ctx.sizes
    jobs_url, bare_url = f"{stack.api_url}/v1/jobs", f"{stack.bare_url}/jobs"
    connections = sizes.accept_connections
    one, one_cmp, one_cost = _scenario(
        "accept, one key", f"POST /v1/jobs, {connections} connections, one key"
    )
    eight, eight_cmp, eight_cost = _scenario(
        "accept, 8 keys", f"POST /v1/jobs, {connections} connections spread over 8 users' keys"
    )
    bare_cost = Cost(BARE)
    one.costs.append(bare_cost)
    bare_reports: list[dict[str, Any]] = []
    # Connection pools, imports and caches warm up outside the measured runs.
    drivers.load(jobs_url, connections, duration=WARMUP_S, keys=stack.keys[:1], idempotency=True)
    drivers.load(bare_url, connections, duration=WARMUP_S)
    for _ in range(sizes.runs):
        seconds = sizes.accept_seconds
        _record(
            one, one_cmp, _measured_load(ctx, jobs_url, "api", stack.keys[:1], one_cost, seconds)
        )
        bare_reports.append(_measured_load(ctx, bare_url, "bare-api", [], bare_cost, seconds))
        _record(
            eight,
            eight_cmp,
            _measured_load(ctx, jobs_url, "api", stack.keys[:8], eight_cost, seconds),
        )
    for comparisons in (one_cmp, eight_cmp):
        comparisons[0].baseline = [r["rps"] for r in bare_reports]
        comparisons[1].baseline = [r["latency_ms"]["p50"] for r in bare_reports]
        comparisons[2].baseline = [r["latency_ms"]["p99"] for r in bare_reports]
    one.details["baseline_status"] = [r["status"] for r in bare_reports]
    if ctx.profile == "accept":
        with profiled(stack.processes["api"].pid, ctx.profile_dir, "accept-api", 100):
            drivers.load(
                jobs_url,
                connections,
                duration=sizes.accept_seconds,
                keys=stack.keys[:1],
                idempotency=True,
            )
    stack.clear_jobs()
    return [one, eight]


def sweep(ctx: BenchContext) -> ScenarioResult:
    """One run per connection count, promptq (one key) and the bare API side by side: the
    figures behind the latency-against-load chart."""
    stack, sizes = ctx.stack, ctx.sizes
    result = ScenarioResult(
        "accept load sweep",
        "POST /v1/jobs, one key, at each connection count; one run each",
        statement_kind="accept",
    )
    points = []
    for connections in sizes.sweep_connections:
        seconds = sizes.accept_seconds / 2
        mine = drivers.load(
            f"{stack.api_url}/v1/jobs",
            connections,
            duration=seconds,
            keys=stack.keys[:1],
            idempotency=True,
        )
        bare = drivers.load(f"{stack.bare_url}/jobs", connections, duration=seconds)
        points.append({"connections": connections, "promptq": mine, "bare": bare})
        result.comparisons.append(
            Comparison(
                f"jobs/s at {connections} conns", "jobs/s", [mine["rps"]], BARE, [bare["rps"]]
            )
        )
        result.comparisons.append(
            Comparison(
                f"p99 at {connections} conns",
                "ms",
                [mine["latency_ms"]["p99"]],
                BARE,
                [bare["latency_ms"]["p99"]],
                lower_is_better=True,
            )
        )
    result.details["points"] = points
    stack.clear_jobs()
    return result
