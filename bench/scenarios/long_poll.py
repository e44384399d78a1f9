"""Long-poll: accept throughput with 500 parked waiters against accept without them (issue 12).

Each round runs the accept load alone and while bench.long_poll_waiters holds its waiters (in
alternating order), each in GET /v1/jobs/<id>?wait=S on a job that stays queued (no worker
runs). The ratio is computed run by run from that adjacent pair. The API's
`promptq_long_polls_waiting` gauge says how many waiters were parked when the load began: under
gunicorn's gthread worker class only as many as it has threads, the rest waiting for one
(`--api-worker-class gthread`).
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import requests

from bench import drivers
from bench.context import BenchContext
from bench.results import Comparison, ScenarioResult
from devstack.processes import BIN
from devstack.stack import ROOT

WAITERS = 500
# Longer than a measured window: the waiters stay parked throughout, as a worst case.
WAIT_S = 25
PARK_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 5.0
WITHOUT = "no waiters"


def _parked(api_url: str) -> float | None:
    """The API's parked waiters; None when /metrics itself finds no thread to answer it."""
    try:
        text = requests.get(f"{api_url}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith("promptq_long_polls_waiting "):
            return float(line.split()[1])
    return 0.0


def _with_waiters(ctx: BenchContext, jobs_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The accept load's report while the waiters hold, and the waiters' own report."""
    stack = ctx.stack
    argv = [str(BIN / "python"), "-m", "bench.long_poll_waiters", "--api", stack.api_url]
    argv += ["--key", stack.keys[1], "--waiters", str(WAITERS), "--wait", str(WAIT_S)]
    waiters = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert waiters.stdout is not None
        if waiters.stdout.readline().strip() != "ready":
            raise RuntimeError("bench.long_poll_waiters did not start")
        deadline = time.monotonic() + PARK_TIMEOUT_S
        parked = _parked(stack.api_url)
        while (parked or 0) < WAITERS and time.monotonic() < deadline:
            time.sleep(0.2)
            parked = _parked(stack.api_url)
        load = drivers.load(
            jobs_url,
            ctx.sizes.accept_connections,
            duration=ctx.sizes.accept_seconds,
            keys=stack.keys[:1],
            idempotency=True,
            # A starved API (gthread) answers nothing: the run still ends.
            request_timeout=REQUEST_TIMEOUT_S,
        )
        load["parked_waiters"] = parked
    finally:
        waiters.send_signal(signal.SIGTERM)
        out, _ = waiters.communicate(timeout=60)
    return load, drivers.last_json(out)


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, sizes = ctx.stack, ctx.sizes
    jobs_url = f"{stack.api_url}/v1/jobs"
    comparisons = [
        Comparison(f"accepted jobs/s, {WAITERS} waiters", "jobs/s", baseline_name=WITHOUT),
        Comparison(
            f"latency p99, {WAITERS} waiters", "ms", baseline_name=WITHOUT, lower_is_better=True
        ),
    ]
    result = ScenarioResult(
        "long-poll",
        f"POST /v1/jobs, {sizes.accept_connections} connections, one key, while {WAITERS} "
        f"GET ?wait={WAIT_S} wait on queued jobs (API: gunicorn {stack.api_worker_class})",
        comparisons,
    )
    result.details.update(parked_waiters=[], waiters=[], status=[])
    drivers.load(jobs_url, sizes.accept_connections, duration=1.0, keys=stack.keys[:1])
    for round_number in range(sizes.runs):

        def alone() -> dict[str, Any]:
            return drivers.load(
                jobs_url,
                sizes.accept_connections,
                duration=sizes.accept_seconds,
                keys=stack.keys[:1],
                idempotency=True,
                request_timeout=REQUEST_TIMEOUT_S,
            )

        # Every run leaves more queued jobs behind: the order alternates so that drift lands on
        # both sides of the ratio.
        if round_number % 2 == 0:
            without = alone()
            loaded, waited = _with_waiters(ctx, jobs_url)
        else:
            loaded, waited = _with_waiters(ctx, jobs_url)
            without = alone()
        comparisons[0].promptq.append(loaded["rps"])
        comparisons[0].baseline.append(without["rps"])
        comparisons[1].promptq.append(loaded["latency_ms"]["p99"])
        comparisons[1].baseline.append(without["latency_ms"]["p99"])
        result.details["parked_waiters"].append(loaded["parked_waiters"])
        result.details["waiters"].append(waited)
        result.details["status"].append(loaded["status"])
        result.details.setdefault("timeouts", []).append(loaded["timeouts"])
    stack.clear_jobs()
    return [result]
