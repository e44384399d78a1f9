"""Fault tests: whole stacks of real processes with short leases, sweeps and backoffs, plus
dedicated Redis and PostgreSQL servers (tests/faults/servers.py) a test may restart."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from shared.settings import normalize_database_url
from tests.conftest import Services, clear_process_caches
from tests.faults.servers import (
    DedicatedPostgres,
    DedicatedRedis,
    start_dedicated_postgres,
)
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


@pytest.fixture
def use_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point this test process's own settings (engine, Redis client, producers) at other
    servers, as the stack's processes are; restored after the test."""

    def use(*, database_url: str | None = None, redis_url: str | None = None) -> None:
        if database_url is not None:
            monkeypatch.setenv("DATABASE_URL", normalize_database_url(database_url))
        if redis_url is not None:
            monkeypatch.setenv("REDIS_URL", redis_url)
        clear_process_caches()

    yield use
    monkeypatch.undo()
    clear_process_caches()


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


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[DedicatedRedis]:
    redis_server = DedicatedRedis(tmp_path / "valkey")
    redis_server.start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def dedicated_postgres(tmp_path: Path) -> Iterator[DedicatedPostgres]:
    dedicated = start_dedicated_postgres(tmp_path / "pgdata")
    yield dedicated
    dedicated.close()
