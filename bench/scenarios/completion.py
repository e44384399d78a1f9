"""Completion at 1 s provider latency: jobs admitted in bulk, run by the workers of a shape
(processes x concurrency), against baseline (b), bare Celery tasks sleeping 1 s on the same
pool, and baseline (c), the openai SDK called in a loop at the same total concurrency.

promptq's jobs go in as batches the moment the workers consume; throughput is succeeded jobs
over the time from the first job's start to the last one's finish (job rows). The bare tasks
record their own start and finish times the same way. Each round runs promptq, (b), then (c).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bench import drivers
from bench.bare_celery import DONE_KEY, TIMES_KEY, publish_sleeps, use_broker
from bench.context import BenchContext
from bench.measure.job_timings import Completion, completion, database_now, finished_count
from bench.measure.profiler import profiled
from bench.promptq_client import MODEL, batch_bodies, post_batch
from bench.results import Comparison, Cost, ScenarioResult
from bench.sizes import SHAPES
from bench.stack import start_bare_workers, stop_all, wait_ready
from devstack.processes import ManagedProcess, wait_until

LATENCY_MS = 1000.0
BARE = "bare Celery (b)"
SDK = "openai SDK loop (c)"


def deadline_s(jobs: int, concurrency: int) -> float:
    """Long enough for a system at a tenth of its ideal rate; a stall past it is reported."""
    return jobs / concurrency * (LATENCY_MS / 1000) * 10 + 60


def total_concurrency(workers: list[ManagedProcess]) -> int:
    return sum(int(w.argv[w.argv.index("--concurrency") + 1]) for w in workers)


def wait_or_stall(condition: Callable[[], bool], timeout: float, what: str) -> bool:
    """Wait for `condition`; False if it did not come: a stall is a figure too, reported by
    the unfinished count rather than ending the bench."""
    try:
        wait_until(condition, timeout=timeout, interval=0.2, what=what)
    except TimeoutError:
        return False
    return True


def promptq_run(
    ctx: BenchContext,
    shape: tuple[int, int],
    jobs: int,
    tag: str,
    cost: Cost,
    models: tuple[str, ...] = (MODEL,),
) -> Completion:
    """Admit `jobs` jobs in batches to running workers of `shape` (processes, concurrency) and
    wait until all are final. After a stall what is left is cleared, so it cannot spill into
    the next run."""
    stack = ctx.stack
    bodies = batch_bodies(jobs, tag, models=models)
    workers = stack.workers(*shape)
    with stack.db() as connection:
        since = database_now(connection)
        with ctx.window(workers, "worker", api=[stack.processes["api"]]) as usage:
            for body in bodies:
                post_batch(stack.api_url, stack.keys[0], body)
            wait_or_stall(
                lambda: finished_count(connection, since) >= jobs,
                deadline_s(jobs, total_concurrency(workers)),
                f"{jobs} jobs",
            )
        done = completion(connection, since)
    cost.add(usage, done.succeeded)
    if done.unfinished:
        stack.clear_jobs()
    return done


def _bare_run(ctx: BenchContext, workers: list[ManagedProcess], jobs: int, cost: Cost) -> float:
    client = redis.Redis.from_url(ctx.stack.baseline_redis_url)
    client.delete(DONE_KEY, TIMES_KEY)
    with ctx.window(workers, "worker") as usage:
        publish_sleeps(LATENCY_MS / 1000, jobs)
        wait_or_stall(
            lambda: int(client.get(DONE_KEY) or 0) >= jobs,
            deadline_s(jobs, total_concurrency(workers)),
            f"{jobs} bare tasks",
        )
    times = [tuple(map(float, raw.split())) for raw in client.lrange(TIMES_KEY, 0, -1)]
    cost.add(usage, len(times))
    if not times:
        return 0.0
    return len(times) / (max(end for _, end in times) - min(start for start, _ in times))


def _sdk_run(ctx: BenchContext, concurrency: int, jobs: int, cost: Cost) -> float:
    with ctx.window([], "worker") as usage:
        report = drivers.sdk_loop(f"{ctx.stack.sim_url}/v1", concurrency, jobs)
    cost.add(usage, report["calls"], client_cpu_s=report["cpu_s"])
    return report["calls_per_s"]


def _shape(ctx: BenchContext, count: int, concurrency: int) -> ScenarioResult:
    stack, sizes = ctx.stack, ctx.sizes
    jobs = sizes.completion_size(count, concurrency)
    shape = f"{count} x c{concurrency}"
    vs_bare = Comparison("jobs/s", "jobs/s", baseline_name=BARE)
    vs_sdk = Comparison("jobs/s", "jobs/s", baseline_name=SDK)
    costs = [Cost("promptq"), Cost(BARE), Cost(SDK)]
    result = ScenarioResult(
        f"completion {shape}",
        f"{jobs:,} jobs at 1 s latency, {count} worker(s) x concurrency {concurrency}",
        [vs_bare, vs_sdk],
        costs,
        statement_kind="complete",
    )
    result.details.update(failed=[], unfinished=[])
    bare_start = start_bare_workers(stack.baseline_redis_url, stack.log_dir, count, concurrency)
    try:
        stack.workers(count, concurrency)
        bare_workers = wait_ready(bare_start)
        for n in range(sizes.completion_runs):
            tag = f"c-{count}x{concurrency}-{n}"
            done = promptq_run(ctx, (count, concurrency), jobs, tag, costs[0])
            vs_bare.promptq.append(done.jobs_per_s)
            vs_sdk.promptq.append(done.jobs_per_s)
            result.details["failed"].append(done.failed)
            result.details["unfinished"].append(done.unfinished)
            vs_bare.baseline.append(_bare_run(ctx, bare_workers, jobs, costs[1]))
            vs_sdk.baseline.append(_sdk_run(ctx, count * concurrency, jobs, costs[2]))
        if ctx.profile == "worker" and (count, concurrency) == (1, 200):
            # 200 threads per sample: py-spy keeps up at 20 Hz, not at 100.
            worker = stack.workers(1, 200)[0]
            with profiled(worker.pid, ctx.profile_dir, "worker-1x200", 20):
                promptq_run(ctx, (1, 200), jobs, "c-profile", Cost("profiled"))
    finally:
        stop_all(bare_start.processes)
    return result


def run(ctx: BenchContext) -> list[ScenarioResult]:
    use_broker(ctx.stack.baseline_redis_url)
    ctx.stack.set_sim(LATENCY_MS)
    started = time.monotonic()
    # 1 x c64 last: the scenarios after this one run on the workers it leaves running.
    order = sorted(SHAPES, key=lambda shape: shape == (1, 64))
    results = {shape: _shape(ctx, *shape) for shape in order}
    results[SHAPES[0]].details["all_shapes_s"] = time.monotonic() - started
    return [results[shape] for shape in SHAPES]
