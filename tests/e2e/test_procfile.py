"""`honcho start` runs the Procfile as written, from the venv without activating it, against this
machine's PostgreSQL and Redis: two web processes migrate an empty database without racing, a
job and its webhook go through, SIGTERM stops everything within honcho's kill wait, and no job is
lost: the jobs it cut off mid-call or left queued are still in the database, and a second
`honcho start` finishes them and delivers their webhooks.

The provider is a simulator outside the stack, as a real provider is: its calls outlive the
SIGTERM. (The Procfile's own simulator lets its held calls go when it stops.) The Procfile's
simulator is checked to answer as a provider would."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import make_url

from devstack.processes import BIN, free_port, http_ok, refused, wait_until
from devstack.stack import ROOT, simulator_env
from shared.models import FINAL_STATUSES
from tests.conftest import Services, StartSim
from tests.support.stack import RunningStack
from tests.support.webhook_receiver import Delivery, Route, WebhookReceiver, register_endpoint

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
# Slower than honcho's 5 s between SIGTERM and SIGKILL: these calls are cut off mid-flight.
SLOW_CALL_MS = 30_000
SLOW_JOBS = 5
CONCURRENCY = 2
# Lease, sweep and webhook timings short enough for a test to watch recovery happen.
ENV = {
    "WORKER_CONCURRENCY": str(CONCURRENCY),
    "JOB_LEASE_S": "5",
    "PERMIT_TTL_S": "5",
    "SWEEP_INTERVAL_S": "1",
    "REQUEUE_GRACE_S": "2",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_SCHEDULE_S": "0,1,1,1,1",
    "WEBHOOK_JITTER": "0",
    "WEBHOOK_TIMEOUT_S": "3",
    "WEBHOOK_LEASE_S": "6",
    "WEBHOOK_DISPATCH_INTERVAL_S": "0.5",
    "WEBHOOK_REDISPATCH_S": "5",
    "LOG_JSON": "true",
}
START_S = 90
WAIT_S = 60


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _base_port() -> int:
    """A base for honcho's -p whose ports are free: web.1, web.2, worker, webhooks."""
    for _ in range(50):
        base = secrets.randbelow(200) * 100 + 10_000
        if all(_port_free(base + offset) for offset in (0, 1, 100, 200)):
            return base
    raise RuntimeError("no free range of ports for honcho")


@dataclass
class Honcho:
    """`honcho start` as a child in its own session, its output in a file."""

    argv: list[str]
    env: dict[str, str]
    out_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Honcho:
        with self.out_path.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stopped_processes(self) -> list[str]:
        return re.findall(r"system\s*\| (\S+) stopped", self.output())

    def child_groups(self) -> list[int]:
        """Each Procfile process runs in a session (and process group) of its own."""
        return [int(p) for p in re.findall(r"started \(pid=(\d+)\)", self.output())]

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM honcho; its exit code and how long it took to exit."""
        assert self.popen is not None
        began = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout)
        return code, time.monotonic() - began

    def kill_leftovers(self) -> list[int]:
        """SIGKILL whatever of this run outlived honcho; the groups that were still there."""
        left = []
        groups = self.child_groups() + ([self.popen.pid] if self.popen else [])
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
                left.append(group)
        if self.popen is not None and self.popen.poll() is None:
            self.popen.wait(5)
        return left


@pytest.fixture
def fresh_database(services: Services) -> Iterator[str]:
    """An empty database beside the test database: the Procfile's web must build its schema."""
    url = make_url(services.database_url)
    name = f"{url.database}_procfile"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _job_statuses(database_url: str) -> dict[str, str]:
    libpq = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False)) as conn:
        rows = conn.execute("SELECT id::text, status FROM jobs").fetchall()
    return dict(rows)


def _delivered(route: Route) -> dict[str, Delivery]:
    """Verified job.succeeded deliveries by job id."""
    return {
        d.payload["data"]["job"]["id"]: d
        for d in route.received()
        if d.verified and d.payload.get("type") == "job.succeeded"
    }


def _job(n: int) -> dict[str, object]:
    # Distinct prompts: the response cache must not answer for the provider.
    return {"model": MODEL, "messages": [{"role": "user", "content": f"procfile job {n}"}]}


def test_honcho_runs_the_procfile_and_loses_no_job_on_sigterm(
    clean: Services, fresh_database: str, start_sim: StartSim, tmp_path: Path
) -> None:
    """Everything the Procfile starts comes up and stays up (no entry exits), serves the job
    and webhook path, and on SIGTERM stops within seconds; the jobs it cut off mid-call or left
    queued are all in the database, not failed, and the next start finishes them all."""
    base = _base_port()
    web_ports = (base, base + 1)
    worker_metrics, webhook_metrics = base + 100, base + 200
    sim_port, flower_port = free_port(), free_port()
    api = f"http://127.0.0.1:{base}"
    procfile_sim = f"http://127.0.0.1:{sim_port}"
    sim = start_sim()
    flower = f"http://127.0.0.1:{flower_port}"
    flower_auth = ("ops", secrets.token_urlsafe(12))
    venv_bin = str(BIN)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= ENV | simulator_env(sim)
    env |= {
        # No .venv/bin: the Procfile's commands must find the venv's tools by themselves.
        "PATH": path,
        "DATABASE_URL": fresh_database,
        "REDIS_URL": clean.redis_url,
        "PUBLIC_BASE_URL": api,
        "SIM_PORT": str(sim_port),
        "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": ":".join(flower_auth),
        "FLOWER_DB": str(tmp_path / "flower" / "flower.db"),
        "BEAT_SCHEDULE_FILE": str(tmp_path / "beat" / "celerybeat-schedule"),
    }
    # An empty env file: a developer's own .env must not change what this test runs.
    (tmp_path / "empty.env").write_text("")
    argv = [str(BIN / "honcho"), "start", "-e", str(tmp_path / "empty.env")]
    argv += ["-p", str(base), "-c", "web=2"]
    stack = RunningStack(api, sim, env, tmp_path)
    receiver = WebhookReceiver()
    runs: list[Honcho] = []

    def start(n: int) -> Honcho:
        honcho = Honcho(argv, env, tmp_path / f"honcho-{n}.out").start()
        runs.append(honcho)
        for port in web_ports:
            wait_until(
                lambda p=port: not honcho.alive() or http_ok(f"http://127.0.0.1:{p}/health"),
                timeout=START_S,
                what=f"web on {port}",
            )
        assert honcho.alive(), honcho.tail()
        return honcho

    def ready(honcho: Honcho) -> None:
        wait_until(
            lambda: not honcho.alive() or http_ok(f"{api}/ready"),
            timeout=START_S,
            what="the stack to be ready",
        )
        for url in (f"{flower}/healthcheck", f"{procfile_sim}/health"):
            wait_until(lambda u=url: not honcho.alive() or http_ok(u), timeout=START_S, what=url)
        assert honcho.alive() and not honcho.stopped_processes(), honcho.tail()

    try:
        first = start(1)
        # Both web processes migrated the empty database, one after the other.
        assert first.output().count("migrations: the database schema is at head") == 2
        stack.cli("users", "create", "alice")
        key = stack.cli("keys", "create", "alice")
        ready(first)

        # Each worker serves its own /metrics on its honcho $PORT; Flower wants credentials.
        for port in (worker_metrics, webhook_metrics):
            wait_until(
                lambda p=port: http_ok(f"http://127.0.0.1:{p}/metrics"),
                timeout=WAIT_S,
                what=f"/metrics on {port}",
            )
        assert requests.get(f"{flower}/api/workers", timeout=5).status_code == 401

        def flower_lists_workers() -> bool:
            answer = requests.get(f"{flower}/api/workers?refresh=1", auth=flower_auth, timeout=10)
            names = {name.split("@")[0] for name in answer.json()}
            return names >= {"worker.1", "webhooks.1"}

        wait_until(flower_lists_workers, timeout=WAIT_S, what="Flower to list both workers")
        assert list((tmp_path / "beat").glob("celerybeat-schedule*")), "beat's schedule file"
        completion = requests.post(
            f"{procfile_sim}/v1/chat/completions",
            json=_job(0) | {"max_tokens": 16},
            headers={"Authorization": "Bearer sk-sim"},
            timeout=10,
        )
        assert completion.ok and completion.json()["usage"]["total_tokens"] > 0

        route = receiver.route("/hooks")
        register_endpoint(stack, key, route)
        one = stack.submit(key, _job(0))["id"]
        assert stack.wait_final(key, one, timeout=WAIT_S)["status"] == "succeeded"
        wait_until(lambda: one in _delivered(route), timeout=WAIT_S, what="the first webhook")

        # Calls that outlast honcho's kill wait, and more jobs than the worker has slots.
        stack.set_faults({"model": "*", "latency_ms": SLOW_CALL_MS})
        slow = [stack.submit(key, _job(n))["id"] for n in range(1, SLOW_JOBS + 1)]
        wait_until(
            lambda: list(_job_statuses(fresh_database).values()).count("running") == CONCURRENCY,
            timeout=WAIT_S,
            what="the worker's slots to fill",
        )
        _, took = first.terminate()
        assert took < 15, f"honcho took {took:.1f}s to stop"
        assert first.kill_leftovers() == [], "processes outlived honcho"
        for url in (f"http://127.0.0.1:{p}/" for p in (*web_ports, sim_port, flower_port)):
            assert refused(url), f"{url} still answers after SIGTERM"
        stack.clear_faults()

        # Nothing failed or vanished: the cut-off jobs hold leases that will expire, the rest
        # wait queued.
        statuses = _job_statuses(fresh_database)
        assert set(statuses) == {one, *slow}
        assert statuses[one] == "succeeded"
        assert (
            sorted(statuses[j] for j in slow)
            == ["queued"] * (SLOW_JOBS - CONCURRENCY) + ["running"] * CONCURRENCY
        ), statuses

        second = start(2)
        ready(second)
        for job_id in slow:
            assert stack.wait_final(key, job_id, timeout=WAIT_S)["status"] == "succeeded"
        wait_until(
            lambda: set(_delivered(route)) >= {one, *slow},
            timeout=WAIT_S,
            what="every job's webhook",
        )
        assert all(s in FINAL_STATUSES for s in _job_statuses(fresh_database).values())
        _, took = second.terminate()
        assert took < 15, f"honcho took {took:.1f}s to stop"
    finally:
        for honcho in runs:
            if honcho.alive():
                honcho.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                with contextlib.suppress(subprocess.TimeoutExpired):
                    honcho.popen.wait(15)  # type: ignore[union-attr]
            honcho.kill_leftovers()
        receiver.close()
