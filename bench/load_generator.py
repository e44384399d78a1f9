"""An HTTP load generator in its own process: POST job bodies over N keep-alive connections.

wrk is not on the machine (and CI cannot install it), so this is the smallest thing that keeps
up: asyncio with raw HTTP/1.1 requests built as bytes, one coroutine per connection, no HTTP
library in the loop. It reports its own CPU seconds beside the request rate so a reader can see
it was not the bottleneck (a share of one core well below 1.0).

    python -m bench.load_generator --url http://127.0.0.1:8000/v1/jobs --connections 64 \
        --duration 10 --keys KEY1,KEY2 --idempotency

Prints one JSON object: requests, elapsed_s, rps (2xx answers per second), status counts,
latency_ms p50/p90/p99/max, cpu_s and cpu_share (CPU seconds of this process per wall second of
the window).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.stats import percentile


@dataclass
class Tally:
    """What the connections saw inside the measured window."""

    latencies_ms: list[float] = field(default_factory=list)
    status: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    # Requests unanswered after --request-timeout (their connection is dropped).
    timeouts: int = 0
    # Every response, inside the window or not: what the server did while it was metered.
    responses: int = 0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _request_bytes(target: Target, key: str | None, n: int, args: argparse.Namespace) -> bytes:
    # Distinct content per request: no response cache or deduplication can shorten the work.
    body = json.dumps(
        {
            "model": args.model,
            "messages": [{"role": "user", "content": f"bench {os.getpid()}-{n}"}],
            "max_tokens": args.max_tokens,
            "priority": args.priority,
        }
    ).encode()
    headers = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    if args.idempotency:
        headers.append(f"Idempotency-Key: {uuid.uuid4()}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep_alive = None, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    if length is None:
        await reader.read()
        return status, False
    await reader.readexactly(length)
    return status, keep_alive


class Run:
    """Shared state of one load run: the request counter and the measured window."""

    def __init__(self, target: Target, args: argparse.Namespace, keys: list[str | None]) -> None:
        self.target = target
        self.args = args
        self.keys = keys
        self.sent = 0
        self.tally = Tally()
        self.window_start = 0.0
        self.window_end = float("inf")

    def next_request(self, connection: int) -> bytes | None:
        """The next request to send, or None when the run has sent all it should."""
        if self.args.requests is not None and self.sent >= self.args.requests:
            return None
        if time.monotonic() >= self.window_end:
            return None
        self.sent += 1
        key = self.keys[connection % len(self.keys)]
        return _request_bytes(self.target, key, self.sent, self.args)

    async def connection(self, index: int) -> None:
        reader = writer = None
        try:
            while (request := self.next_request(index)) is not None:
                if writer is None:
                    reader, writer = await asyncio.open_connection(
                        self.target.host, self.target.port
                    )
                assert reader is not None
                started = time.monotonic()
                try:
                    writer.write(request)
                    status, keep_alive = await asyncio.wait_for(
                        read_response(reader), self.args.request_timeout
                    )
                except TimeoutError:
                    self.tally.timeouts += 1
                    writer.close()
                    reader = writer = None
                    continue
                except (OSError, asyncio.IncompleteReadError):
                    self.tally.connection_errors += 1
                    writer.close()
                    reader = writer = None
                    continue
                finished = time.monotonic()
                self.tally.responses += 1
                if started >= self.window_start and finished <= self.window_end:
                    self.tally.latencies_ms.append((finished - started) * 1000)
                    self.tally.status[status] += 1
                if not keep_alive:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()


async def _drive(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    target = Target(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/")
    keys: list[str | None] = list(args.keys.split(",")) if args.keys else [None]
    run = Run(target, args, keys)
    now = time.monotonic()
    run.window_start = now + args.warmup
    if args.duration is not None:
        run.window_end = run.window_start + args.duration
    tasks = [asyncio.create_task(run.connection(i)) for i in range(args.connections)]
    await asyncio.sleep(max(0.0, run.window_start - time.monotonic()))
    cpu_start = _cpu_seconds()
    await asyncio.gather(*tasks)
    ended = min(time.monotonic(), run.window_end)
    elapsed = max(ended - run.window_start, 1e-9)
    cpu = _cpu_seconds() - cpu_start
    latencies = run.tally.latencies_ms
    accepted = sum(n for code, n in run.tally.status.items() if 200 <= code < 300)
    return {
        "requests": len(latencies),
        "responses": run.tally.responses,
        "elapsed_s": elapsed,
        # A refusal (429, 503) is quick to make: only 2xx answers count as throughput.
        "rps": accepted / elapsed,
        "status": {str(code): n for code, n in sorted(run.tally.status.items())},
        "connection_errors": run.tally.connection_errors,
        "timeouts": run.tally.timeouts,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "max": max(latencies, default=float("nan")),
        },
        "cpu_s": cpu,
        "cpu_share": cpu / elapsed,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=64)
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--duration", type=float, help="seconds of measured load")
    limit.add_argument("--requests", type=int, help="send exactly this many requests")
    parser.add_argument("--warmup", type=float, default=0.0, help="unmeasured seconds first")
    parser.add_argument("--keys", default="", help="bearer keys, spread over the connections")
    parser.add_argument("--idempotency", action="store_true", help="an Idempotency-Key each")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--priority", default="normal")
    parser.add_argument(
        "--request-timeout", type=float, help="seconds before an unanswered request is dropped"
    )
    args = parser.parse_args(argv)
    if args.requests is not None and args.warmup:
        parser.error("--warmup goes with --duration")
    return args


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(asyncio.run(_drive(parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
