"""POST /v1/batches, GET /v1/batches/<id> and its JSON Lines results, through the Flask app on
the real Postgres and Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from shared.db import transaction
from shared.models import Batch, Job, JobStatus
from shared.repositories.batches import settle_finished
from shared.repositories.job_dispatch import backlog_depth
from shared.settings import get_settings
from tests.api.job_helpers import (
    VALID,
    auth,
    error_of,
    job_count,
    open_transactions,
    reservation_of,
    reserved_total,
    set_budgets,
    set_key_limits,
)
from tests.conftest import Account, Services
from tests.support.jobs import succeeded_result
from tests.support.workers import worker_alive


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """At most 3 jobs and 4 KiB of JSON per batch, for this test only."""
    monkeypatch.setenv("MAX_BATCH_JOBS", "3")
    monkeypatch.setenv("MAX_BATCH_REQUEST_BYTES", "4096")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("MAX_BATCH_JOBS")
    monkeypatch.delenv("MAX_BATCH_REQUEST_BYTES")
    get_settings.cache_clear()


def _batch(n: int, **fields: Any) -> dict[str, Any]:
    return {"jobs": [{**VALID, **fields, "custom_id": f"row-{i:05d}"} for i in range(n)]}


def _finish(batch_id: str, statuses: dict[str, str]) -> None:
    """Put jobs of the batch (by custom_id) into final states, as workers would."""
    with transaction() as session:
        for custom_id, status in statuses.items():
            session.execute(
                update(Job)
                .where(Job.batch_id == uuid.UUID(batch_id), Job.custom_id == custom_id)
                .values(
                    status=status,
                    result=succeeded_result(custom_id) if status == "succeeded" else None,
                    error={"code": "x", "message": "y"} if status == "failed" else None,
                    input_tokens=3,
                    output_tokens=4,
                    cost_usd=Decimal("0.00001"),
                    reserved_usd=0,
                )
            )


def test_batch_is_admitted_queued_and_published(
    client: FlaskClient, alice: Account, clean: Services
) -> None:
    """A batch answers 202 in_progress with all jobs queued, each row carries batch_id, custom_id
    and its reservation, and, the window having room, one message per job reaches its priority
    queue."""
    worker_alive(slots=2)
    body = _batch(3, priority="low")
    body["jobs"][0]["priority"] = "high"
    body["metadata"] = {"run": "nightly"}
    response = client.post("/v1/batches", json=body, headers=auth(alice))
    assert response.status_code == 202, response.get_data(as_text=True)
    batch = response.get_json()
    assert batch["object"] == "batch"
    assert batch["status"] == "in_progress"
    assert batch["counts"] == {
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 3,
    }
    assert batch["metadata"] == {"run": "nightly"}
    assert response.headers["Location"].endswith(f"/v1/batches/{batch['id']}")
    with transaction() as session:
        rows = session.scalars(select(Job).order_by(Job.custom_id)).all()
    assert [r.custom_id for r in rows] == ["row-00000", "row-00001", "row-00002"]
    assert {str(r.batch_id) for r in rows} == {batch["id"]}
    assert {r.reserved_usd for r in rows} == {reservation_of(VALID)}
    assert {r.status for r in rows} == {"queued"}
    broker = redis.Redis.from_url(clean.redis_url)
    assert (broker.llen("jobs.high"), broker.llen("jobs.low")) == (1, 2)
    assert str(rows[0].id) in json.loads(broker.lpop("jobs.high"))["headers"]["argsrepr"]


def test_batch_location_is_absolute_and_resolves_to_the_batch(
    client: FlaskClient, alice: Account
) -> None:
    """The 202's Location is an absolute URL, as a job's is, and GET on it returns the batch."""
    response = client.post("/v1/batches", json=_batch(1), headers=auth(alice))
    assert response.status_code == 202
    batch = response.get_json()
    location = response.headers["Location"]
    url = urlsplit(location)
    assert url.scheme in ("http", "https") and url.netloc
    assert location == batch["results_url"].removesuffix("/results")
    fetched = client.get(location, headers=auth(alice))
    assert fetched.status_code == 200
    assert fetched.get_json()["id"] == batch["id"]
    assert fetched.headers["Location"] == location


def test_batch_counts_and_results_stream(client: FlaskClient, alice: Account) -> None:
    """GET reports counts by status and turns completed when no job is left; the results are
    JSON Lines of the finished jobs only, in custom_id order."""
    batch_id = client.post("/v1/batches", json=_batch(4), headers=auth(alice)).get_json()["id"]
    _finish(batch_id, {"row-00001": "failed", "row-00002": "succeeded"})
    batch = client.get(f"/v1/batches/{batch_id}", headers=auth(alice)).get_json()
    assert batch["status"] == "in_progress"
    assert (batch["counts"]["queued"], batch["counts"]["failed"]) == (2, 1)
    assert batch["counts"]["succeeded"] == 1

    response = client.get(f"/v1/batches/{batch_id}/results", headers=auth(alice))
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["custom_id"] for line in lines] == ["row-00001", "row-00002"]
    assert lines[1] == {
        "custom_id": "row-00002",
        "job_id": lines[1]["job_id"],
        "status": "succeeded",
        # Shown with `degraded`, which a result written by a model's answer does not store.
        "result": {**succeeded_result("row-00002"), "degraded": False},
        "error": None,
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        "cost_usd": "0.00001",
    }
    assert lines[0]["error"] == {"code": "x", "message": "y"}
    assert open_transactions() == []

    _finish(batch_id, {"row-00000": "cancelled", "row-00003": "succeeded"})
    # Every job is final, but the settling beat has not run yet.
    assert client.get(f"/v1/batches/{batch_id}", headers=auth(alice)).get_json()["status"] == (
        "in_progress"
    )
    with transaction() as session:
        settle_finished(session, "http://api.test", 100)
    done = client.get(f"/v1/batches/{batch_id}", headers=auth(alice)).get_json()
    assert done["status"] == "completed"
    assert done["completed_at"] is not None
    assert done["counts"]["cancelled"] == 1


def test_other_users_batch_is_404(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Someone else's batch, its results, and unknown ids all answer 404."""
    batch_id = client.post("/v1/batches", json=_batch(1), headers=auth(alice)).get_json()["id"]
    bob = make_account("bob")
    for path in (f"/v1/batches/{batch_id}", f"/v1/batches/{batch_id}/results"):
        error_of(client.get(path, headers=auth(bob)), 404, "not_found")
    error_of(client.get(f"/v1/batches/{uuid.uuid4()}", headers=auth(alice)), 404, "not_found")
    error_of(client.get("/v1/batches/xyz/results", headers=auth(alice)), 404, "not_found")


BAD_BATCHES: list[tuple[str, Any, str]] = [
    ("no jobs", {"jobs": []}, "validation_error"),
    ("repeated custom_id", {"jobs": [{**VALID, "custom_id": "a"}] * 2}, "validation_error"),
    ("missing custom_id", {"jobs": [VALID]}, "validation_error"),
    ("empty custom_id", {"jobs": [{**VALID, "custom_id": ""}]}, "validation_error"),
    ("long custom_id", {"jobs": [{**VALID, "custom_id": "x" * 65}]}, "validation_error"),
    ("NUL in custom_id", {"jobs": [{**VALID, "custom_id": "a\u0000"}]}, "validation_error"),
    ("bad job", {"jobs": [{**VALID, "custom_id": "a", "max_tokens": 0}]}, "validation_error"),
    ("unknown field", {**_batch(1), "colour": "red"}, "validation_error"),
    ("over max_batch_jobs", _batch(4), "validation_error"),
    ("unknown model", {"jobs": [{**VALID, "custom_id": "a", "model": "gpt-9"}]}, "unknown_model"),
]


@pytest.mark.parametrize(("why", "body", "code"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES])
def test_bad_batches_are_422_and_write_nothing(
    client: FlaskClient, alice: Account, small_batches: None, why: str, body: Any, code: str
) -> None:
    """A malformed batch is refused whole with 422; no batch and no job is written."""
    error = error_of(client.post("/v1/batches", json=body, headers=auth(alice)), 422, code)
    if code == "unknown_model":
        assert (error["details"]["index"], error["details"]["custom_id"]) == (0, "a")
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
    assert job_count(alice) == 0


def test_batch_body_limit_is_its_own(client: FlaskClient, alice: Account) -> None:
    """A batch may be larger than MAX_REQUEST_BYTES (which still holds for POST /v1/jobs)."""
    messages = [{"role": "user", "content": "x" * 200_000}] * 6
    job = {**VALID, "messages": messages}
    error_of(client.post("/v1/jobs", json=job, headers=auth(alice)), 413, "payload_too_large")
    response = client.post(
        "/v1/batches", json={"jobs": [{**job, "custom_id": "big"}]}, headers=auth(alice)
    )
    assert response.status_code == 202


def test_batch_over_its_byte_limit_is_413(
    client: FlaskClient, alice: Account, small_batches: None
) -> None:
    """A batch body over MAX_BATCH_REQUEST_BYTES is 413 payload_too_large."""
    body = {"jobs": [{**VALID, "custom_id": "a", "metadata": {"pad": "p" * 4000}}]}
    error_of(client.post("/v1/batches", json=body, headers=auth(alice)), 413, "payload_too_large")
    assert job_count(alice) == 0


def test_batch_is_one_budget_check_and_one_rate_limit_charge(
    client: FlaskClient, alice: Account
) -> None:
    """A batch counts as one request and the sum of its jobs' estimated tokens, and its jobs'
    total reservation must fit the budget or the whole batch is refused."""
    set_key_limits(alice, rpm=2, tpm=10_000)
    response = client.post("/v1/batches", json=_batch(3, max_tokens=100), headers=auth(alice))
    assert response.status_code == 202
    assert response.headers["X-RateLimit-Remaining"] == "1"
    assert response.headers["X-RateLimit-Remaining-Tokens"] == str(10_000 - 3 * (1 + 4 + 100))

    set_budgets(alice, daily=reserved_total(alice) + reservation_of(VALID) * 2)
    refused = client.post("/v1/batches", json=_batch(3), headers=auth(alice))
    error = error_of(refused, 429, "budget_exceeded")
    assert error["details"]["requested_usd"] == str(reservation_of(VALID) * 3)
    assert job_count(alice) == 3


def test_ten_thousand_jobs_admit_in_seconds_and_stream_back(
    client: FlaskClient, alice: Account, clean: Services
) -> None:
    """A batch of 10,000 jobs is validated and inserted in well under a minute, the broker gets
    only the window the live workers' slots make (two per slot), the rest waits in PostgreSQL,
    and its 10,000 results stream back as a streamed response."""
    worker_alive(slots=16)
    body = _batch(10_000, max_tokens=16)
    started = time.perf_counter()
    response = client.post("/v1/batches", json=body, headers=auth(alice))
    admitted_s = time.perf_counter() - started
    assert response.status_code == 202
    assert response.get_json()["counts"]["queued"] == 10_000
    assert redis.Redis.from_url(clean.redis_url).llen("jobs.normal") == 32
    with transaction() as session:
        assert backlog_depth(session) == 10_000 - 32
    print(f"\nadmitting a 10,000-job batch took {admitted_s:.2f} s")
    assert admitted_s < 60

    with transaction() as session:
        session.execute(update(Job).values(status=JobStatus.SUCCEEDED, reserved_usd=0))
    started = time.perf_counter()
    results = client.get(
        f"/v1/batches/{response.get_json()['id']}/results", headers=auth(alice), buffered=False
    )
    assert results.is_streamed
    count = sum(1 for line in results.response if line.strip())
    print(f"streaming 10,000 results took {time.perf_counter() - started:.2f} s")
    assert count == 10_000
    assert open_transactions() == []


def test_abandoned_results_stream_releases_its_connection(
    client: FlaskClient, alice: Account
) -> None:
    """A client that stops reading the results half-way leaves no transaction open."""
    batch_id = client.post("/v1/batches", json=_batch(600), headers=auth(alice)).get_json()["id"]
    with transaction() as session:
        session.execute(update(Job).values(status=JobStatus.FAILED, reserved_usd=0))
    response = client.get(f"/v1/batches/{batch_id}/results", headers=auth(alice), buffered=False)
    first = next(iter(response.response))
    assert json.loads(first)["custom_id"] == "row-00000"
    assert open_transactions() != []
    response.close()
    assert open_transactions() == []
