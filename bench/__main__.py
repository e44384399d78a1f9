"""`python -m bench`: start promptq and the bare baselines, run the scenarios, write results.

    python -m bench                 # the standard set (`make bench`)
    python -m bench --quick         # smaller sizes, same scenarios (`make bench-quick`)
    python -m bench --only accept,batch --profile accept

Results go to bench/results/<UTC timestamp>/ (results.json, summary.md, PNG charts, process
logs, profiles); the figures table is printed at the end. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.context import BenchContext
from bench.results import ScenarioResult
from bench.scenarios import (
    accept,
    batch,
    completion,
    deep_backlog,
    degraded,
    fairness,
    idle,
    long_poll,
    priority,
    semantic_cache,
    statement_counts,
)
from bench.services import bench_services
from bench.sizes import QUICK, STANDARD
from bench.stack import BenchStack
from devstack.stack import API_WORKER_CLASSES, ROOT

# In this order, the worker shape one scenario leaves running serves the next.
SCENARIOS = (
    "statements",
    "accept",
    "long_poll",
    "sweep",
    "batch",
    "completion",
    "degraded",
    "idle",
    "priority",
    "fairness",
    "deep_backlog",
    "semantic_cache",
)
# Users (each with one key) the accept scenarios spread their load over.
ACCOUNTS = 8


def _git_label() -> str:
    """The last commit that changed promptq (the bench's own commits change no figure), marked
    +dirty when promptq's code has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    product = ("api", "worker", "shared", "sim", "migrations", "devstack")
    label = git("log", "-1", "--format=%h", "--", *product) or "unknown"
    if git("status", "--porcelain", "--", *product):
        label += "+dirty"
    return label


def _machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpu = model or platform.processor()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def _annotate_statements(
    results: list[ScenarioResult], per_job: dict[str, dict[str, float]]
) -> None:
    """Put the counting pass's per-job figures on the cost rows they stand for."""
    for result in results:
        for cost in result.costs:
            phase = "bare" if cost.system == "bare API (a)" else result.statement_kind
            if cost.system.startswith("promptq") or phase == "bare":
                figures = per_job.get(phase or "")
                if figures:
                    cost.pg_statements_per_job = figures["statements"]
                    cost.pg_round_trips_per_job = figures["round_trips"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (make bench-quick)")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios to run, of: {','.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--profile",
        choices=("accept", "worker"),
        help="py-spy the API during an extra accept run, or the worker during an extra "
        "1 x c200 completion run; writes profiles/ in the results folder",
    )
    parser.add_argument("--runs", type=int, help="runs per scenario instead of the mode's")
    parser.add_argument("--completion-jobs", type=int, help="jobs per completion run")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<UTC>)")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument(
        "--api-worker-class",
        choices=sorted(API_WORKER_CLASSES),
        default="gevent",
        help="gunicorn's worker class for promptq's and the bare API (default: promptq's own)",
    )
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.scenarios = [s for s in SCENARIOS if s in chosen]
    if args.profile == "accept" and "accept" not in args.scenarios:
        parser.error("--profile accept needs the accept scenario")
    if args.profile == "worker" and "completion" not in args.scenarios:
        parser.error("--profile worker needs the completion scenario")
    return args


def _sizes(args: argparse.Namespace):
    sizes = QUICK if args.quick else STANDARD
    if args.runs:
        runs = args.runs
        sizes = dataclasses.replace(
            sizes,
            runs=runs,
            batch_runs=runs,
            completion_runs=runs,
            idle_runs=runs,
            priority_runs=runs,
            degraded_runs=runs,
            fair_runs=runs,
        )
    if args.completion_jobs:
        sizes = dataclasses.replace(sizes, completion_jobs=args.completion_jobs)
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = _sizes(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out or ROOT / "bench" / "results" / stamp
    started = time.monotonic()
    results: list[ScenarioResult] = []
    per_job: dict[str, dict[str, float]] = {}

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    with bench_services(ROOT / ".data" / "bench") as services:
        say(f"services: {'embedded' if services.embedded else 'configured'}; results {out_dir}")
        stack = BenchStack(services, out_dir / "logs", args.api_worker_class)
        try:
            stack.start(ACCOUNTS)
            say("stack ready")
            ctx = BenchContext(stack, sizes, out_dir, args.profile)
            steps: dict[str, Callable[[], list[ScenarioResult]]] = {
                "accept": lambda: accept.run(ctx),
                "long_poll": lambda: long_poll.run(ctx),
                "sweep": lambda: [accept.sweep(ctx)] if sizes.sweep_connections else [],
                "batch": lambda: batch.run(ctx),
                "completion": lambda: completion.run(ctx),
                "idle": lambda: idle.run(ctx),
                "priority": lambda: priority.run(ctx),
                "degraded": lambda: degraded.run(ctx),
                "fairness": lambda: fairness.run(ctx),
                "deep_backlog": lambda: deep_backlog.run(ctx),
                "semantic_cache": lambda: semantic_cache.run(ctx),
            }
            for name in args.scenarios:
                say(f"{name} ...")
                scenario_started = time.monotonic()
                if name == "statements":
                    counted, per_job = statement_counts.run(ctx)
                    found = [counted]
                else:
                    found = steps[name]()
                for result in found:
                    result.details["scenario_wall_s"] = time.monotonic() - scenario_started
                results += found
        finally:
            stack.stop()
    _annotate_statements(results, per_job)
    shares = [share for r in results for share in r.details.get("load_generator_cpu_share", [])]
    meta = {
        "git": _git_label(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "standard",
        "machine": _machine(),
        "services": "embedded" if services.embedded else "configured",
        "sizes": dataclasses.asdict(sizes),
        "wall_s": time.monotonic() - started,
        "load_generator_cpu_share": max(shares, default=0.0),
    }
    text = report.write(out_dir, results, meta)
    if not (args.quick or args.no_charts):
        from bench.charts import write_charts  # matplotlib only where charts are drawn

        for chart in write_charts(results, out_dir):
            say(f"chart {chart.name}")
    print()
    print(text)
    say(f"done: {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
