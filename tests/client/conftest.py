"""One promptq stack for the client's end-to-end tests (gunicorn API, a job worker, a webhook
worker, beat, the simulator), and accounts made with the admin CLI and the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack

ADMIN_KEY = "admin-" + uuid.uuid4().hex
ENV = {
    "ADMIN_API_KEY": ADMIN_KEY,
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    # The failing chain's retries take a fraction of a second.
    "RETRY_BASE_S": "0.05",
    "RETRY_CAP_S": "0.2",
    # Batches settle (and send their batch.* events) within half a second of their last job.
    "BATCH_SETTLE_INTERVAL_S": "0.5",
}
# Every call to these models fails (simulator rules below), so their jobs end failed.
FAILING = {"model": "o4-mini", "fallbacks": ["gpt-4.1-mini"]}
# Streamed jobs run on this model: the simulator takes its time over it, so a stream of it has
# tokens to show before the job finishes.
SLOW = {"model": "claude-haiku-4-5", "latency_ms": 1500}
# The simulator's fault rules for the whole package; a test that sets others puts these back.
FAULT_RULES: tuple[dict[str, object], ...] = (
    *({"model": m, "kind": "server_error"} for m in (FAILING["model"], *FAILING["fallbacks"])),
    SLOW,
)


@dataclass(frozen=True)
class Account:
    name: str
    user_id: str
    key: str


# One stack for tests/client alone: a session-wide one outlived the package, and its workers
# (worker@host, webhooks@host) then took the jobs and answered the inspections of later tests
# that share the session's Redis (tests/e2e/test_flower.py saw them as duplicate nodes).
@pytest.fixture(scope="package")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log_dir: Path = tmp_path_factory.mktemp("client-stack")
    running = start_stack(
        services.database_url,
        services.redis_url,
        log_dir,
        extra_env=ENV,
        webhook_workers=1,
        beat=True,
    )
    try:
        running.set_faults(*FAULT_RULES)
        yield running
    finally:
        running.stop()


def new_account(stack: RunningStack, label: str = "client") -> Account:
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    user_id = stack.cli("users", "create", name)
    return Account(name, user_id, stack.cli("keys", "create", name))


def limited_key(stack: RunningStack, account: Account, rpm_limit: int) -> str:
    """Another key of the account with its own requests-per-minute limit (admin API)."""
    response = requests.post(
        f"{stack.api_url}/v1/admin/users/{account.user_id}/keys",
        json={"rpm_limit": rpm_limit},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]


@pytest.fixture
def account(stack: RunningStack) -> Account:
    return new_account(stack)
