"""Long-poll waiters in their own process: N connections, each holding GET /v1/jobs/<id>?wait=S on
a job that stays queued (no worker runs), and asking again as soon as it is answered.

    python -m bench.long_poll_waiters --api http://127.0.0.1:8000 --key KEY --waiters 500 --wait 20

It submits one job per waiter first, prints `ready` once every waiter has sent its first request,
and on SIGTERM prints one JSON object: waits answered, how many came back before their wait was
over (none should: the jobs stay queued), status counts and connection errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import requests

from bench.load_generator import read_response
from bench.promptq_client import job_body, submit

# An answer this much earlier than its wait was cut short.
EARLY_MARGIN_S = 0.5


class Waiters:
    def __init__(self, args: argparse.Namespace, job_ids: list[str]) -> None:
        parts = urlsplit(args.api)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.args = args
        self.job_ids = job_ids
        self.answered = 0
        self.early = 0
        self.status: Counter[int] = Counter()
        self.connection_errors = 0
        self.sent_first = 0
        self.stopping = asyncio.Event()

    def _request(self, job_id: str) -> bytes:
        return (
            f"GET /v1/jobs/{job_id}?wait={self.args.wait:g} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {self.args.key}\r\n\r\n"
        ).encode()

    async def hold(self, job_id: str) -> None:
        request = self._request(job_id)
        first = True
        while not self.stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.connection_errors += 1
                await asyncio.sleep(0.1)
                continue
            try:
                while not self.stopping.is_set():
                    started = time.monotonic()
                    writer.write(request)
                    await writer.drain()
                    if first:
                        first = False
                        self.sent_first += 1
                    status, keep_alive = await read_response(reader)
                    self.answered += 1
                    self.status[status] += 1
                    if time.monotonic() - started < self.args.wait - EARLY_MARGIN_S:
                        self.early += 1
                    if not keep_alive:
                        break
            except (OSError, asyncio.IncompleteReadError):
                self.connection_errors += 1
            finally:
                writer.close()

    async def run(self) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        tasks = [asyncio.create_task(self.hold(job_id)) for job_id in self.job_ids]
        while self.sent_first < len(tasks):
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await self.stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "waiters": len(tasks),
            "answered": self.answered,
            "early": self.early,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "connection_errors": self.connection_errors,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", required=True, help="the API's base URL")
    parser.add_argument("--key", required=True)
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--wait", type=float, default=20.0, help="seconds per long-poll")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with requests.Session() as session:
        job_ids = [
            submit(session, args.api, args.key, job_body("waiter", n)) for n in range(args.waiters)
        ]
    print(json.dumps(asyncio.run(Waiters(args, job_ids).run())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
