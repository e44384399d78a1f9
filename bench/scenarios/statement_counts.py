"""Postgres statements and round trips per job, counted on the wire (bench/measure/pg_counter).

A short pass of its own, before the timed scenarios: a second promptq API and worker whose
DATABASE_URL points at the counting proxy, on a Redis database no beat publishes sweeps to, so
only the jobs' own work is counted. Phases, counters reset between them:
  accept    N single POST /v1/jobs (one key, an Idempotency-Key each), no worker running;
  batch     one POST /v1/batches of N jobs;
  complete  a worker (c16, fast provider) started and run until all 2N jobs are final (its
            start-up statements are included);
and the bare API (a) accepting N jobs through the same proxy, as the floor for "accept".
"""

from __future__ import annotations

from collections.abc import Callable

from bench import drivers
from bench.context import BenchContext
from bench.measure.job_timings import database_now, finished_count
from bench.measure.pg_counter import PgCounter, WireCounts, counting, via_proxy
from bench.promptq_client import batch_bodies, post_batch
from bench.results import Comparison, ScenarioResult
from bench.scenarios.completion import wait_or_stall
from bench.stack import (
    promptq_env,
    start_api,
    start_bare_api,
    start_workers,
    stop_all,
    wait_ready,
)
from devstack.processes import ManagedProcess, free_port

BARE = "bare API (a)"
WORKER_CONCURRENCY = 16


def _phase(counter: PgCounter, action: Callable[[], object]) -> WireCounts:
    counter.reset()
    action()
    return counter.counts()


def run(ctx: BenchContext) -> tuple[ScenarioResult, dict[str, dict[str, float]]]:
    """The pass's result and its per-job figures by phase: "accept", "batch", "complete",
    "bare" (statements, round_trips, connections)."""
    stack, jobs = ctx.stack, ctx.sizes.counting_jobs
    stack.set_sim(0.0)
    processes: list[ManagedProcess] = []
    per_job: dict[str, WireCounts] = {}
    with counting(stack.database_url) as counter, stack.db() as connection:
        proxied = via_proxy(stack.database_url, counter.port)
        api_port, bare_port = free_port(), free_port()
        env = promptq_env(proxied, stack.baseline_redis_url, stack.sim_url, api_port)
        try:
            bare_env = {
                "BENCH_BARE_DATABASE_URL": proxied,
                "BENCH_REDIS_URL": stack.baseline_redis_url,
            }
            processes += wait_ready(
                start_api(
                    api_port,
                    env,
                    stack.log_dir,
                    name="api-counted",
                    worker_class=stack.api_worker_class,
                ),
                start_bare_api(bare_port, bare_env, stack.log_dir),
            )
            since = database_now(connection)
            api_url = f"http://127.0.0.1:{api_port}"
            key = stack.keys[0]
            per_job["accept"] = _phase(
                counter,
                lambda: drivers.load(
                    f"{api_url}/v1/jobs", 8, requests=jobs, keys=[key], idempotency=True
                ),
            )
            (body,) = batch_bodies(jobs, "counted-batch")
            per_job["batch"] = _phase(counter, lambda: post_batch(api_url, key, body))

            def complete() -> None:
                processes.extend(
                    wait_ready(
                        start_workers(env, stack.log_dir, 1, WORKER_CONCURRENCY, "counted-worker")
                    )
                )
                wait_or_stall(
                    lambda: finished_count(connection, since) >= 2 * jobs, 120, "counted jobs"
                )

            per_job["complete"] = _phase(counter, complete)
            per_job["bare"] = _phase(
                counter,
                lambda: drivers.load(f"http://127.0.0.1:{bare_port}/jobs", 8, requests=jobs),
            )
        finally:
            stop_all(processes)
    stack.clear_jobs()
    divisors = {"accept": jobs, "batch": jobs, "complete": 2 * jobs, "bare": jobs}
    per = {phase: counts.per(divisors[phase]) for phase, counts in per_job.items()}
    result = ScenarioResult(
        "Postgres statements (wire count)",
        f"{jobs} accepted one by one, {jobs} in one batch, all {2 * jobs} completed; per job",
        [
            Comparison(
                "statements per accepted job",
                "stmts",
                [per["accept"]["statements"]],
                BARE,
                [per["bare"]["statements"]],
                lower_is_better=True,
            ),
            Comparison(
                "round trips per accepted job",
                "trips",
                [per["accept"]["round_trips"]],
                BARE,
                [per["bare"]["round_trips"]],
                lower_is_better=True,
            ),
            Comparison(
                "statements per batch-admitted job",
                "stmts",
                [per["batch"]["statements"]],
                lower_is_better=True,
            ),
            Comparison(
                "statements per completed job",
                "stmts",
                [per["complete"]["statements"]],
                lower_is_better=True,
            ),
            Comparison(
                "round trips per completed job",
                "trips",
                [per["complete"]["round_trips"]],
                lower_is_better=True,
            ),
            Comparison(
                "connections opened per completed job",
                "conns",
                [per["complete"]["connections"]],
                lower_is_better=True,
            ),
        ],
    )
    result.details["per_job"] = per
    return result, per
