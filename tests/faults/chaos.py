"""`make chaos`: a bounded chaos run against a whole stack of real processes.

A steady load of jobs (a share of them with a signed callback) runs while a harness injects one
random fault after another: kill -9 of a job worker or of the webhook worker (a fresh one is
started at once), a Redis restart that loses every key, a PostgreSQL restart, and the provider
failing 30% of its calls. Then it stops the load, waits for everything to settle and checks every
invariant: each job final with exactly one success or one final error, usage = billed attempts =
`jobs.cost_usd`, no lease or reservation left, every webhook message delivered with one
`webhook-id`, successful provider calls at most jobs plus the calls in flight in killed workers,
no 500 from the API and no process that exited by itself. It prints the figures and exits 1 if
any invariant broke.

    python -m tests.faults.chaos [--seconds 180] [--fault-every 15] [--seed N]

Its own Redis and PostgreSQL (embedded), so it never touches the machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import FAST_ENV, clear_process_caches
from tests.faults.invariants import assert_settled, final_count
from tests.faults.load import SteadyLoad
from tests.faults.seeding import create_account
from tests.faults.servers import DedicatedPostgres, DedicatedRedis, start_dedicated_postgres
from tests.support.recording_receiver import WEBHOOK_ENV, Receiver
from tests.support.stack import RunningStack, start_stack

MODEL = "gpt-4o-mini"
JOB_WORKERS = ("worker", "worker2")
HEAL_DEADLINE_S = 60.0
SETTLE_S = 120.0
FAULT_KINDS = (
    "kill_worker",
    "kill_webhook_worker",
    "restart_redis",
    "restart_postgres",
    "provider_faults",
)


@dataclass
class Fault:
    kind: str
    at: float
    heal_s: float | None = None


@dataclass
class Chaos:
    stack: RunningStack
    redis: DedicatedRedis
    postgres: DedicatedPostgres
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    killed: set[str] = field(default_factory=set)
    generation: Counter[str] = field(default_factory=Counter)

    def inject(self, kind: str) -> Fault:
        fault = Fault(kind, time.monotonic())
        if kind in ("kill_worker", "kill_webhook_worker"):
            name = self.rng.choice(JOB_WORKERS) if kind == "kill_worker" else "webhooks"
            live = self._live_name(name)
            self.stack.processes[live].kill()
            self.killed.add(live)
            self.generation[name] += 1
            fresh = f"{name}-{self.generation[name]}"
            if kind == "kill_worker":
                self.stack.start_worker(fresh, concurrency=8)
            else:
                self.stack.start_webhook_worker(fresh)
        elif kind == "restart_redis":
            self.redis.stop()
            time.sleep(2)  # the outage itself
            self.redis.start()
        elif kind == "restart_postgres":
            self.postgres.stop()
            time.sleep(1)  # the outage itself
            self.postgres.start()
        elif kind == "provider_faults":
            kind = self.rng.choice(["rate_limit", "server_error"])
            self.stack.set_faults({"model": MODEL, "kind": kind, "rate": 0.3})
            time.sleep(8)
            self.stack.clear_faults()
        self.faults.append(fault)
        return fault

    def _live_name(self, name: str) -> str:
        generation = self.generation[name]
        return name if generation == 0 else f"{name}-{generation}"


def _heal_time(stack: RunningStack, key: str, since: float) -> float | None:
    """Seconds from `since` until a job submitted now is final; None if it never was."""
    deadline = time.monotonic() + HEAL_DEADLINE_S
    job_id = None
    while job_id is None and time.monotonic() < deadline:
        try:
            response = requests.post(
                f"{stack.api_url}/v1/jobs",
                json={"model": MODEL, "messages": [{"role": "user", "content": "probe"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            if response.status_code == 202:
                job_id = response.json()["id"]
        except requests.RequestException:
            pass
        if job_id is None:
            time.sleep(0.2)
    if job_id is None:
        return None
    try:
        wait_until(
            lambda: final_count([job_id]) == 1,
            timeout=max(0.1, deadline - time.monotonic()),
            interval=0.1,
        )
    except TimeoutError:
        return None
    return time.monotonic() - since


def _webhook_problems(receiver: Receiver) -> tuple[int, list[str]]:
    with transaction() as session:
        rows = session.execute(
            text(
                "SELECT id::text, job_id::text, status, attempt_count,"
                " extract(epoch FROM now() - dispatched_at) AS published_s_ago"
                " FROM webhook_messages"
            )
        ).all()
    problems = [
        f"webhook message {r.id} is {r.status} after {r.attempt_count} attempts, "
        + (
            "not published since its last attempt began"
            if r.published_s_ago is None
            else f"last published {r.published_s_ago:.0f} s ago"
        )
        for r in rows
        if r.status != "succeeded"
    ]
    ids_by_job: dict[str, set[str]] = {}
    for request in receiver.received:
        body = json.loads(request.body)
        job = body["data"]["job"]["id"]
        ids_by_job.setdefault(job, set()).add(request.headers.get("webhook-id", ""))
    for r in rows:
        if r.job_id not in ids_by_job:
            problems.append(f"job {r.job_id}'s callback never arrived")
    problems += [
        f"job {job} arrived under {len(ids)} webhook-ids"
        for job, ids in ids_by_job.items()
        if len(ids) != 1
    ]
    return len(rows), problems


def run(seconds: float, fault_every: float, seed: int, root: Path) -> int:
    rng = random.Random(seed)
    # The receiver's request log would bury the figures.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    redis_server = DedicatedRedis(root / "valkey")
    redis_server.start()
    postgres = start_dedicated_postgres(root / "pgdata")
    os.environ["DATABASE_URL"] = postgres.url
    os.environ["REDIS_URL"] = redis_server.url
    os.environ["LOG_JSON"] = "true"
    clear_process_caches()
    receiver = Receiver()
    receiver.start()
    stack = start_stack(
        postgres.url,
        redis_server.url,
        root / "logs",
        sim_latency_ms=300,
        extra_env={**FAST_ENV, **WEBHOOK_ENV},
        workers=len(JOB_WORKERS),
        concurrency=8,
        beat=True,
        webhook_workers=1,
    )
    chaos = Chaos(stack, redis_server, postgres, rng)
    account = create_account("chaos")
    plain = SteadyLoad(stack.api_url, account, MODEL, interval=0.05).start()
    hooked = SteadyLoad(
        stack.api_url, account, MODEL, interval=0.25, extra={"callback_url": receiver.url}
    ).start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds - fault_every:
            time.sleep(fault_every * rng.uniform(0.5, 1.0))
            fault = chaos.inject(rng.choice(FAULT_KINDS))
            fault.heal_s = _heal_time(stack, account.key, time.monotonic())
            healed = "never" if fault.heal_s is None else f"{fault.heal_s:.2f} s"
            print(f"  {fault.kind:<20} healed in {healed}", flush=True)
    finally:
        plain.stop()
        hooked.stop()
    stack.clear_faults()
    with transaction() as session:
        every_job = list(session.execute(text("SELECT id::text FROM jobs")).scalars())
    stopped = time.monotonic()
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: final_count(every_job) == len(every_job), timeout=SETTLE_S, interval=0.5)
        wait_until(lambda: not _webhook_problems(receiver)[1], timeout=SETTLE_S, interval=0.5)
    settle_s = time.monotonic() - stopped
    problems: list[str] = []
    try:
        statuses = assert_settled(every_job)
    except AssertionError as exc:
        problems += str(exc).splitlines()
        statuses = Counter()
    webhook_count, webhook_problems = _webhook_problems(receiver)
    problems += webhook_problems
    sim = stack.sim_stats()
    faults_injected = sum(sim["faults_by_kind"].values())
    successful_calls = sim["total_requests"] - faults_injected
    # A call is made only under a claim, and a success ends the claim's chain, so no claim
    # makes two: re-claims (a killed worker's jobs, after their leases ran out) are the only
    # way to a second successful call, whether the killed worker's call was still in flight
    # or had returned and was not yet committed.
    with transaction() as session:
        claims = session.execute(text("SELECT COALESCE(SUM(deliveries), 0) FROM jobs")).scalar_one()
    if successful_calls > claims:
        problems.append(
            f"{successful_calls} successful provider calls for {len(every_job)} jobs and "
            f"only {claims} claims"
        )
    lost_writes = sum(
        stack.processes[name].log_text().count('"job.lease_lost"') for name in stack.processes
    )
    answers = plain.statuses + hooked.statuses
    server_errors = {status: n for status, n in answers.items() if status >= 500 and status != 503}
    if server_errors:
        problems.append(
            f"API answered {server_errors} on POST /v1/jobs: {(plain.errors + hooked.errors)[:3]}"
        )
    exited = [
        name for name, p in stack.processes.items() if name not in chaos.killed and not p.alive()
    ]
    if exited:
        problems.append(f"processes exited by themselves: {exited}")
    heals = [f.heal_s for f in chaos.faults if f.heal_s is not None]
    unhealed = [f.kind for f in chaos.faults if f.heal_s is None]
    if unhealed:
        problems.append(f"no recovery within {HEAL_DEADLINE_S} s after: {unhealed}")
    print()
    print(f"chaos run: {seconds:.0f} s, seed {seed}")
    from_load = len(plain.accepted) + len(hooked.accepted)
    print(f"  jobs: {len(every_job)} ({from_load} from the load, the rest probes)")
    print(f"  final states: {dict(statuses)}")
    print(f"  faults injected: {dict(Counter(f.kind for f in chaos.faults))}")
    if heals:
        ordered = sorted(heals)
        print(f"  time to heal: median {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s")
    print(f"  settled {settle_s:.1f} s after the load stopped")
    per_job = sim["total_requests"] / max(1, len(every_job))
    print(
        f"  provider calls: {sim['total_requests']} ({faults_injected} injected failures), "
        f"{per_job:.3f} per job"
    )
    print(
        f"  successful calls: {successful_calls}; claims: {claims} "
        f"({claims - len(every_job)} re-claims); final writes that found their lease lost: "
        f"{lost_writes}"
    )
    print(f"  POST /v1/jobs answers: {dict(answers)}")
    print(f"  webhook messages: {webhook_count}, received: {len(receiver.received)}")
    print(f"  processes exited by themselves: {exited or 'none'}")
    stack.stop()
    receiver.stop()
    redis_server.stop()
    postgres.close()
    if problems:
        print("INVARIANTS BROKEN:")
        for problem in problems[:40]:
            print(f"  - {problem}")
        return 1
    print("every invariant held")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--fault-every", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    with tempfile.TemporaryDirectory(prefix="promptq-chaos-") as root:
        return run(args.seconds, args.fault_every, seed, Path(root))


if __name__ == "__main__":
    sys.exit(main())
