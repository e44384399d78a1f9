"""Baseline (c): what a user does without promptq: the official openai SDK called in a loop.

`--concurrency` coroutines share one AsyncOpenAI client and call chat.completions.create until
`--calls` calls are done. Prints one JSON object: calls, failures, elapsed_s, calls_per_s, and
this process's CPU seconds (cpu_s), so the figure is the SDK's cost and the simulator's speed.

    python -m bench.baselines.sdk_loop --base-url http://127.0.0.1:8090/v1 --concurrency 64 \
        --calls 640
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import openai


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _loop(args: argparse.Namespace) -> dict[str, float]:
    # The SDK as a user gets it: its own HTTP client and defaults.
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="sk-sim")
    remaining = args.calls
    failures = 0

    async def worker(n: int) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            try:
                await client.chat.completions.create(
                    model=args.model,
                    messages=[{"role": "user", "content": f"bench sdk {n} {remaining}"}],
                    max_tokens=32,
                )
            except openai.OpenAIError:
                failures += 1

    cpu_start, started = _cpu_seconds(), time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
    elapsed = time.monotonic() - started
    cpu = _cpu_seconds() - cpu_start
    await client.close()
    done = args.calls - failures
    return {
        "calls": done,
        "failures": failures,
        "elapsed_s": elapsed,
        "calls_per_s": done / elapsed,
        "cpu_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_loop(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
