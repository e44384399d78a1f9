"""The processes under test: promptq (simulator, gunicorn, beat, Celery workers) and the bare
baselines (gunicorn on bench.baselines.bare_api, Celery workers on bench.bare_celery).

Workers come and go per scenario; everything else lives for the whole bench. promptq runs as a
user following its README would run it at each shape: BROKER_MAX_CONNECTIONS above the worker's
concurrency, and the shared per-model cap (MODEL_CONCURRENCY_CAP, 64 by default) raised above the
total concurrency so the bench measures the workers rather than a cap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from bench.baselines.bare_api import create_table
from bench.services import (
    Services,
    flush_redis,
    fresh_database,
    postgres_server,
    redis_dbs,
    redis_server,
)
from devstack.processes import BIN, ManagedProcess, free_port, http_ok, wait_until
from devstack.stack import (
    ROOT,
    api_process,
    beat_process,
    sim_process,
    simulator_env,
    worker_process,
)

ADMIN_KEY = "bench-admin-key"
CALL_CAP = 1000
READY_TIMEOUT_S = 90


def broker_connections(concurrency: int) -> int:
    """The broker pool the README asks for: above the worker's concurrency."""
    return max(64, concurrency + 16)


def promptq_env(database_url: str, redis_url: str, sim_url: str, api_port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **simulator_env(sim_url),
        "ADMIN_API_KEY": ADMIN_KEY,
        "LOG_JSON": "true",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "MODEL_CONCURRENCY_CAP": str(CALL_CAP),
    }


@dataclass
class Starting:
    """Processes launched and the conditions that say they are ready; wait_ready() waits for
    all of them, so several processes start at once instead of one after another."""

    processes: list[ManagedProcess]
    checks: list[tuple[str, Callable[[], bool]]]


def wait_ready(*starting: Starting) -> list[ManagedProcess]:
    """Wait until everything in `starting` is ready; stop it all if something never is."""
    processes = [p for s in starting for p in s.processes]
    try:
        for s in starting:
            for what, check in s.checks:
                wait_until(check, timeout=READY_TIMEOUT_S, what=what)
    except BaseException:
        stop_all(processes)
        raise
    return processes


def _logged_ready(process: ManagedProcess) -> tuple[str, Callable[[], bool]]:
    """Launch a Celery worker; ready once its log, past what earlier runs wrote, says so."""
    offset = process.log_path.stat().st_size if process.log_path.exists() else 0
    process.start()
    return process.name, lambda: "ready." in process.log_text()[offset:]


def _backends_answer(port: int) -> bool:
    """/ready's PostgreSQL and Redis checks pass (its job-worker check may not: accept-only
    scenarios start none). Asking opens a pooled connection, as it always did before a run."""
    answer = requests.get(f"http://127.0.0.1:{port}/ready", timeout=2)
    if answer.status_code == 200:
        return True
    checks = answer.json()["error"]["details"]
    return checks["postgres"] == "ok" and checks["redis"] == "ok"


def start_api(
    port: int, env: dict[str, str], log_dir: Path, name: str = "api", worker_class: str = "gevent"
) -> Starting:
    """promptq's gunicorn, as devstack runs it; ready when PostgreSQL and Redis answer it."""
    process = api_process(port, env, log_dir, worker_class=worker_class)
    process.name, process.log_path = name, log_dir / f"{name}.log"
    process.start()
    return Starting([process], [(name, lambda: _backends_answer(port))])


def start_bare_api(
    port: int, env: dict[str, str], log_dir: Path, worker_class: str = "gevent"
) -> Starting:
    """Baseline (a) under exactly promptq's gunicorn command, only the app swapped."""
    template = api_process(port, env, log_dir, worker_class=worker_class)
    argv = [("bench.baselines.bare_api:app" if a == "api.wsgi:app" else a) for a in template.argv]
    process = ManagedProcess("bare-api", argv, env, log_dir / "bare-api.log", cwd=ROOT).start()
    return Starting(
        [process],
        [
            (
                "the bare API",
                lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 404,
            )
        ],
    )


def start_workers(
    env: dict[str, str], log_dir: Path, count: int, concurrency: int, prefix: str = "worker"
) -> Starting:
    """`count` promptq workers at `concurrency` each."""
    worker_env = {**env, "BROKER_MAX_CONNECTIONS": str(broker_connections(concurrency))}
    workers = [
        worker_process(worker_env, log_dir, name=f"{prefix}{n}", concurrency=concurrency)
        for n in range(1, count + 1)
    ]
    return Starting(workers, [_logged_ready(w) for w in workers])


def start_bare_workers(redis_url: str, log_dir: Path, count: int, concurrency: int) -> Starting:
    """Baseline (b): bare Celery workers on the same pool, concurrency, prefetch 1, late acks."""
    env = {
        "BENCH_REDIS_URL": redis_url,
        "BENCH_PREFETCH": "1",
        "BENCH_MAX_CONNECTIONS": str(broker_connections(concurrency)),
    }
    workers = []
    for n in range(1, count + 1):
        argv = [str(BIN / "celery"), "-A", "bench.bare_celery", "worker", "--pool", "threads"]
        argv += ["--concurrency", str(concurrency), "--hostname", f"bare{n}@%h"]
        argv += ["--loglevel", "INFO", "--without-mingle", "--without-gossip"]
        log = log_dir / f"bare-worker{n}.log"
        workers.append(ManagedProcess(f"bare-worker{n}", argv, env, log, cwd=ROOT))
    return Starting(workers, [_logged_ready(w) for w in workers])


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    for process in processes:
        process.stop()


def roots(processes: Sequence[ManagedProcess]) -> list[psutil.Process]:
    return [psutil.Process(p.pid) for p in processes if p.alive()]


@dataclass
class BenchStack:
    """The long-lived processes and the accounts promptq's scenarios submit with."""

    services: Services
    log_dir: Path
    # gunicorn's worker class of promptq's and the bare API (devstack.stack.API_WORKER_CLASSES).
    api_worker_class: str = "gevent"
    database_url: str = ""
    promptq_redis_url: str = ""
    baseline_redis_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    api_url: str = ""
    sim_url: str = ""
    bare_url: str = ""
    keys: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    postgres: psutil.Process | None = None
    redis: psutil.Process | None = None
    # promptq workers kept between scenarios of the same shape (a start costs seconds).
    running_workers: list[ManagedProcess] = field(default_factory=list)
    running_shape: tuple[int, int, tuple[tuple[str, str], ...]] | None = None

    def start(self, accounts: int) -> None:
        self.database_url = fresh_database(self.services)
        create_table(self.database_url)
        promptq_db, baseline_db = redis_dbs()
        self.promptq_redis_url = self.services.redis_url(promptq_db)
        self.baseline_redis_url = self.services.redis_url(baseline_db)
        flush_redis(self.promptq_redis_url)
        flush_redis(self.baseline_redis_url)
        self.postgres = postgres_server(self.database_url)
        self.redis = redis_server(self.promptq_redis_url)

        sim_port, api_port, bare_port = free_port(), free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.bare_url = f"http://127.0.0.1:{bare_port}"
        self.env = promptq_env(self.database_url, self.promptq_redis_url, self.sim_url, api_port)
        sim = sim_process(sim_port, self.log_dir).start()
        beat = beat_process(self.env, self.log_dir).start()
        bare_env = {
            "BENCH_BARE_DATABASE_URL": self.database_url,
            "BENCH_REDIS_URL": self.baseline_redis_url,
        }
        self.processes.update(sim=sim, beat=beat)
        started = wait_ready(
            Starting([], [("the simulator", lambda: http_ok(f"{self.sim_url}/health"))]),
            start_api(api_port, self.env, self.log_dir, worker_class=self.api_worker_class),
            start_bare_api(bare_port, bare_env, self.log_dir, self.api_worker_class),
        )
        self.processes.update({p.name: p for p in started})
        self.keys = [self._account(n) for n in range(accounts)]

    def stop(self) -> None:
        self.stop_workers()
        stop_all(list(reversed(self.processes.values())))

    def workers(
        self, count: int, concurrency: int, env: dict[str, str] | None = None
    ) -> list[ManagedProcess]:
        """Running promptq workers of this shape (with `env` over the stack's): the ones
        already up, or new ones."""
        shape = (count, concurrency, tuple(sorted((env or {}).items())))
        if self.running_shape != shape or not all(w.alive() for w in self.running_workers):
            self.stop_workers()
            self.running_workers = wait_ready(
                start_workers({**self.env, **(env or {})}, self.log_dir, count, concurrency)
            )
            self.running_shape = shape
        return self.running_workers

    def stop_workers(self) -> None:
        stop_all(self.running_workers)
        self.running_workers, self.running_shape = [], None

    def _admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.api_url}/v1/admin{path}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def _account(self, n: int) -> str:
        """A user with budgets far above what the bench spends, and a key whose rate limits
        are on but far above what it sends: every check runs, none refuses."""
        user = self._admin(
            "/users",
            {"name": f"bench-{n}", "daily_budget_usd": "1000000", "monthly_budget_usd": "9000000"},
        )
        self.user_ids.append(user["id"])
        key = self._admin(
            f"/users/{user['id']}/keys", {"rpm_limit": 1_000_000_000, "tpm_limit": 2_000_000_000}
        )
        return key["key"]

    def set_share(self, n: int, **share: int | None) -> None:
        """Set account `n`'s fair-share settings (weight, max_concurrency) through the admin API."""
        response = requests.patch(
            f"{self.api_url}/v1/admin/users/{self.user_ids[n]}",
            json=share,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        response.raise_for_status()

    def sim_stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.sim_url}/sim/stats", timeout=10)
        response.raise_for_status()
        return response.json()

    def reset_sim_stats(self) -> None:
        requests.post(f"{self.sim_url}/sim/reset", timeout=10).raise_for_status()

    def set_sim(self, latency_ms: float, *faults: dict[str, Any]) -> None:
        """Every model answers after `latency_ms`; `faults` are rules tried first."""
        rules = [{"latency_ms": latency_ms, **rule} for rule in faults]
        rules.append({"model": "*", "latency_ms": latency_ms})
        response = requests.put(f"{self.sim_url}/sim/faults", json={"rules": rules}, timeout=10)
        response.raise_for_status()

    @contextlib.contextmanager
    def db(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            yield connection

    def clear_jobs(self) -> None:
        """Stop the workers, cancel whatever is left and empty the queues, so the next
        scenario starts with nothing waiting."""
        self.stop_workers()
        with self.db() as connection:
            connection.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = now() "
                "WHERE status IN ('queued', 'running')"
            )
            connection.execute("TRUNCATE bare_jobs")
        flush_redis(self.promptq_redis_url)
        flush_redis(self.baseline_redis_url)

    def groups(self, system: Sequence[ManagedProcess], kind: str) -> dict[str, list[Any]]:
        """Process kinds to meter: the system under test as `kind`, plus the shared servers."""
        groups: dict[str, list[Any]] = {kind: roots(system)}
        if self.postgres is not None:
            groups["postgres"] = [self.postgres]
        if self.redis is not None:
            groups["redis"] = [self.redis]
        groups["sim"] = roots([self.processes["sim"]])
        return groups
