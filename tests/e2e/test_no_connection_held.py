"""While a model call is in flight, the worker holds no open transaction or busy connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import get_engine
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

SLOW_CALL_MS = 3000


@pytest.fixture(scope="module")
def slow_stack(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    log_dir: Path = tmp_path_factory.mktemp("slow-stack-logs")
    running = start_stack(
        services.database_url, services.redis_url, log_dir, sim_latency_ms=SLOW_CALL_MS
    )
    yield running
    running.stop()


def _busy_backends() -> list[tuple[str, str]]:
    """Every other session on the test database that is not plain idle."""
    with get_engine().connect() as connection:
        rows = connection.execute(
            text(
                "SELECT state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state IS NOT NULL AND state <> 'idle'"
            )
        )
        return [(r.state, r.query) for r in rows]


def test_no_transaction_open_during_the_model_call(
    slow_stack: RunningStack, clean: Services
) -> None:
    """With the provider taking 3 s to answer, Postgres sees no active or idle-in-transaction
    session from the worker; the job still finishes and is recorded."""
    slow_stack.cli("users", "create", "slow")
    key = slow_stack.cli("keys", "create", "slow")
    job = slow_stack.submit(
        key, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "take your time"}]}
    )
    wait_until(
        lambda: requests.get(f"{slow_stack.sim_url}/sim/stats", timeout=2).json()["in_flight"] == 1,
        timeout=20,
        what="the model call to be in flight",
    )
    assert _busy_backends() == []
    assert slow_stack.wait_final(key, job["id"])["status"] == "succeeded"
