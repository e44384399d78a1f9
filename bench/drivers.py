"""Run the load generator and the SDK loop as separate processes and read their JSON reports."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from devstack.processes import BIN
from devstack.stack import ROOT


def _run(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "python"), "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}): {done.stderr[-2000:]}")
    return last_json(done.stdout)


def last_json(stdout: str) -> dict[str, Any]:
    """The report a bench process prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def load(
    url: str,
    connections: int,
    *,
    duration: float | None = None,
    requests: int | None = None,
    warmup: float = 0.0,
    keys: Sequence[str] = (),
    idempotency: bool = False,
    request_timeout: float | None = None,
) -> dict[str, Any]:
    """POST job bodies at `url` over `connections` connections for `duration` seconds (or
    exactly `requests` requests) from bench.load_generator; its report. `request_timeout`
    drops a request unanswered for that long (counted as a timeout)."""
    args = ["--url", url, "--connections", str(connections)]
    if duration is not None:
        args += ["--duration", str(duration), "--warmup", str(warmup)]
    else:
        args += ["--requests", str(requests)]
    if keys:
        args += ["--keys", ",".join(keys)]
    if idempotency:
        args.append("--idempotency")
    if request_timeout is not None:
        args += ["--request-timeout", str(request_timeout)]
    return _run("bench.load_generator", args, timeout=(duration or 60) + warmup + 120)


def sdk_loop(base_url: str, concurrency: int, calls: int) -> dict[str, Any]:
    """Baseline (c): `calls` calls through the openai SDK at `concurrency`; its report."""
    args = ["--base-url", base_url, "--concurrency", str(concurrency), "--calls", str(calls)]
    return _run("bench.baselines.sdk_loop", args, timeout=calls / concurrency * 10 + 120)
