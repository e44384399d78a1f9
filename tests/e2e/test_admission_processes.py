"""Admission holds across API processes: gunicorn with 4 worker processes, many client threads,
one per-key request limit, one budget and one Idempotency-Key shared through Redis and
Postgres, and a revoked key refused by every process within the key cache's bound."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, update

from devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from devstack.stack import api_process
from shared.db import transaction
from shared.models import ApiKey
from shared.repositories.api_keys import hash_key
from shared.settings import get_settings
from tests.api.job_helpers import (
    job_count,
    reservation_of,
    reserved_total,
    set_budgets,
    set_key_limits,
)
from tests.conftest import Account, Services
from tests.faults.invariants import spend_problems

pytestmark = pytest.mark.e2e

API_WORKERS = 4
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Classify this ticket."}],
    "max_tokens": 200,
}


@pytest.fixture(scope="module")
def api_url(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API alone under gunicorn with 4 worker processes (no worker: jobs stay queued)."""
    log_dir: Path = tmp_path_factory.mktemp("admission-logs")
    port = free_port()
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
    process: ManagedProcess = api_process(port, env, log_dir, workers=API_WORKERS).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/health"), timeout=30, what="the API")
        yield url
    finally:
        process.stop()


def _fire(
    url: str, account: Account, count: int, threads: int, headers: dict[str, str] | None = None
) -> list[requests.Response]:
    """`count` POST /v1/jobs of BODY from `threads` threads at once."""
    sent = {"Authorization": f"Bearer {account.key}", **(headers or {})}

    def submit(_: int) -> requests.Response:
        return requests.post(f"{url}/v1/jobs", json=BODY, headers=sent, timeout=30)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(submit, range(count)))


def _codes(responses: list[requests.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
        for r in responses
    )


def test_request_limit_holds_across_api_processes(
    api_url: str, make_account: Callable[[str], Account]
) -> None:
    """With rpm_limit 30 and 100 requests spread over 4 gunicorn processes, exactly 30 are
    accepted and 70 refused rate_limited with Retry-After."""
    alice = make_account("alice")
    set_key_limits(alice, rpm=30)
    responses = _fire(api_url, alice, count=100, threads=20)
    assert _codes(responses) == {(202, None): 30, (429, "rate_limited"): 70}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses if r.status_code == 429)
    assert job_count(alice) == 30


def test_budget_admits_exactly_what_it_holds_under_concurrency(
    api_url: str, make_account: Callable[[str], Account]
) -> None:
    """40 threads x 10 submissions against a daily budget of exactly 37 reservations: exactly
    37 are admitted (and 37 rows exist), the other 363 are 429 budget_exceeded, and the user's
    spend counters hold exactly the 37 reservations."""
    alice = make_account("alice")
    admitted = 37
    set_budgets(alice, daily=reservation_of(BODY) * admitted)
    responses = _fire(api_url, alice, count=400, threads=40)
    assert _codes(responses) == {(202, None): admitted, (429, "budget_exceeded"): 400 - admitted}
    assert job_count(alice) == admitted
    assert reserved_total(alice) == reservation_of(BODY) * admitted
    assert spend_problems() == []


def test_one_idempotency_key_makes_one_job_across_processes(
    api_url: str, make_account: Callable[[str], Account]
) -> None:
    """50 simultaneous submissions with one Idempotency-Key make one job: the first answer is
    202, the other 49 are 200, all with the same id."""
    alice = make_account("alice")
    responses = _fire(api_url, alice, count=50, threads=50, headers={"Idempotency-Key": "once"})
    assert Counter(r.status_code for r in responses) == {202: 1, 200: 49}
    assert len({r.json()["id"] for r in responses}) == 1
    assert job_count(alice) == 1


def test_a_revoked_key_is_refused_by_every_process_within_the_cache_bound(
    api_url: str, make_account: Callable[[str], Account]
) -> None:
    """Every API process has the key cached when it is revoked from another process; from
    KEY_CACHE_S (5 s) after the revocation on, every request with it is 401."""
    alice = make_account("alice")
    sent = {"Authorization": f"Bearer {alice.key}"}
    warm = [requests.get(f"{api_url}/v1/keys", headers=sent, timeout=10) for _ in range(40)]
    assert {r.status_code for r in warm} == {200}
    with transaction() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == hash_key(alice.key))
            .values(revoked_at=func.now())
        )
    revoked = time.monotonic()
    bound = get_settings().key_cache_s
    assert bound <= 5
    # Past the bound (plus the time one request takes), 40 requests over every process: all 401.
    wait_until(lambda: time.monotonic() > revoked + bound + 0.2, timeout=10, interval=0.05)
    late = [requests.get(f"{api_url}/v1/keys", headers=sent, timeout=10) for _ in range(40)]
    assert {r.status_code for r in late} == {401}
