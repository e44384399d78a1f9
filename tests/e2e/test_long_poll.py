"""Long-polls on real processes: GET /v1/jobs/<id>?wait=N under gunicorn's gevent workers, woken
by the worker's, the API's and the sweeper's announcements (Redis pub/sub), never by a loop of
queries."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from devstack.processes import free_port, http_ok, wait_until
from devstack.stack import api_process
from shared.db import get_engine
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

# Long enough that a waiter is parked well before the job finishes.
MODEL_CALL_MS = 600
# The bound: a waiter answers within this of the job's final write.
WAKE_BOUND_S = 0.1
JOB = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hold on"}]}


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """No worker by default: jobs stay queued unless a test starts one."""
    log_dir: Path = tmp_path_factory.mktemp("long-poll-stack")
    running = start_stack(
        services.database_url, services.redis_url, log_dir, MODEL_CALL_MS, workers=0
    )
    yield running
    running.stop()


@pytest.fixture
def key(stack: RunningStack, clean: Services) -> str:
    stack.cli("users", "create", "waiter")
    return stack.cli("keys", "create", "waiter")


@pytest.fixture
def worker(stack: RunningStack) -> Iterator[None]:
    process = stack.start_worker("long-poll-worker")
    yield
    process.stop()


def _wait(stack: RunningStack, key: str, job_id: str, wait: float | str) -> requests.Response:
    return requests.get(
        f"{stack.api_url}/v1/jobs/{job_id}",
        params={"wait": wait},
        headers={"Authorization": f"Bearer {key}"},
        timeout=40,
    )


def _parked(stack: RunningStack) -> float:
    """Requests parked in a long-poll, summed over the API's processes (its /metrics)."""
    for line in requests.get(f"{stack.api_url}/metrics", timeout=5).text.splitlines():
        if line.startswith("promptq_long_polls_waiting "):
            return float(line.split()[1])
    return 0.0


def _waiters(
    stack: RunningStack, key: str, job_id: str, count: int, wait: float
) -> tuple[ThreadPoolExecutor, list[Any]]:
    pool = ThreadPoolExecutor(count)

    def one() -> tuple[requests.Response, float]:
        response = _wait(stack, key, job_id, wait)
        return response, time.time()

    futures = [pool.submit(one) for _ in range(count)]
    wait_until(lambda: _parked(stack) >= count, timeout=10, what=f"{count} parked waiters")
    return pool, futures


def test_waiters_answer_within_100_ms_of_the_final_write(
    stack: RunningStack, key: str, worker: None
) -> None:
    """Ten waiters, spread over the API's gunicorn processes, are parked before the model
    answers; each gets the succeeded job within 100 ms of the worker's final write."""
    job = stack.submit(key, JOB)
    pool, futures = _waiters(stack, key, job["id"], 10, 20)
    parked_at = time.time()
    with pool:
        answers = [future.result(timeout=30) for future in futures]
    for response, answered_at in answers:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "succeeded"
        finished = datetime.fromisoformat(body["finished_at"]).timestamp()
        # The waiters were parked before the job finished: their answer came from a wake-up.
        assert parked_at < finished
        assert answered_at - finished <= WAKE_BOUND_S, answered_at - finished


def test_a_waiter_on_a_job_that_stays_queued_answers_at_its_deadline(
    stack: RunningStack, key: str
) -> None:
    job = stack.submit(key, JOB)
    started = time.monotonic()
    response = _wait(stack, key, job["id"], 1.5)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 1.5 <= elapsed < 2.5, elapsed


def test_a_cancel_wakes_the_waiters_of_every_api_process(stack: RunningStack, key: str) -> None:
    job = stack.submit(key, JOB)
    pool, futures = _waiters(stack, key, job["id"], 6, 20)
    cancelled = requests.post(
        f"{stack.api_url}/v1/jobs/{job['id']}/cancel",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert cancelled.status_code == 200, cancelled.text
    cancelled_at = time.time()
    with pool:
        answers = [future.result(timeout=30) for future in futures]
    for response, answered_at in answers:
        assert response.json()["status"] == "cancelled"
        assert answered_at - cancelled_at < 1.0


def test_parked_waiters_hold_no_database_session(stack: RunningStack, key: str) -> None:
    """Fifty waiters parked on a queued job: PostgreSQL sees no active or idle-in-transaction
    session from the API, and the API still accepts jobs meanwhile."""
    job = stack.submit(key, JOB)
    pool, futures = _waiters(stack, key, job["id"], 50, 3)
    with get_engine().connect() as connection:
        busy = connection.execute(
            text(
                "SELECT state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state IS NOT NULL AND state <> 'idle'"
            )
        ).all()
    assert busy == []
    assert stack.submit(key, JOB)["status"] == "queued"
    with pool:
        assert {f.result(timeout=30)[0].json()["status"] for f in futures} == {"queued"}


def test_a_final_or_foreign_job_answers_at_once(stack: RunningStack, key: str) -> None:
    job = stack.submit(key, JOB)
    requests.post(
        f"{stack.api_url}/v1/jobs/{job['id']}/cancel",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ).raise_for_status()
    # The other user's key first: two CLI processes' start-up is not what is timed.
    stack.cli("users", "create", "other")
    other = stack.cli("keys", "create", "other")
    started = time.monotonic()
    assert _wait(stack, key, job["id"], 20).json()["status"] == "cancelled"
    missing = _wait(stack, other, job["id"], 20)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("wait", ["31", "-1", "soon", "nan"])
def test_a_bad_wait_is_a_422_naming_it(stack: RunningStack, key: str, wait: str) -> None:
    job = stack.submit(key, JOB)
    response = _wait(stack, key, job["id"], wait)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "wait"


def test_answered_waiters_are_released(stack: RunningStack, key: str) -> None:
    """Every parked waiter is released once answered: the gauge falls back to zero."""
    job = stack.submit(key, JOB)
    pool, futures = _waiters(stack, key, job["id"], 5, 1)
    with pool:
        for future in futures:
            future.result(timeout=30)
    wait_until(lambda: _parked(stack) == 0, timeout=10, what="no parked waiters")


def test_a_stopping_api_answers_its_waiters_before_it_exits(
    stack: RunningStack, key: str, tmp_path: Path
) -> None:
    """SIGTERM to a second API's gunicorn: its parked waiter gets the job (still queued) at once
    instead of a connection cut at the graceful timeout, and the API then exits."""
    port = free_port()
    api = api_process(port, stack.env, tmp_path).start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/health"), timeout=30, what="the second API")
        job = stack.submit(key, JOB)
        second = RunningStack(url, stack.sim_url, stack.env, tmp_path)
        pool, futures = _waiters(second, key, job["id"], 1, 25)
        os.kill(api.pid, signal.SIGTERM)
        stopped_at = time.monotonic()
        with pool:
            response, _ = futures[0].result(timeout=30)
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
        assert time.monotonic() - stopped_at < 3
        wait_until(lambda: not api.alive(), timeout=15, what="the second API to exit")
    finally:
        api.stop()
