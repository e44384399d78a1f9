"""cache "semantic" at the API: what is accepted and stored for the worker, what is refused
(and with which code), and a semantic hit's similarity in the job's attempts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.schemas.jobs import JobCreate
from shared import semantic_backend
from shared.db import transaction
from shared.models import Job
from shared.repositories.attempts import AttemptRecord, record_attempt
from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account

SEMANTIC: dict[str, Any] = {**VALID, "temperature": 0, "cache": "semantic"}


def _stored_request(job_id: str) -> dict[str, Any]:
    with transaction() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return {"request": job.request, "cache": job.cache}


def test_semantic_cache_is_accepted_with_its_default_threshold(
    client: FlaskClient, alice: Account
) -> None:
    """cache "semantic" is a 202 showing the threshold it runs with (0.95 unless given); the
    worker finds it in the stored request, and the exact cache's column stays off."""
    default = client.post("/v1/jobs", json=SEMANTIC, headers=auth(alice))
    assert default.status_code == 202, default.get_json()
    assert (default.get_json()["cache"], default.get_json()["cache_threshold"]) == (
        "semantic",
        0.95,
    )
    stored = _stored_request(default.get_json()["id"])
    assert stored["request"]["semantic_cache"] == {"threshold": 0.95}
    assert stored["cache"] is False

    chosen = client.post(
        "/v1/jobs", json={**SEMANTIC, "cache_threshold": 0.9}, headers=auth(alice)
    ).get_json()
    assert (chosen["cache"], chosen["cache_threshold"]) == ("semantic", 0.9)
    assert _stored_request(chosen["id"])["request"]["semantic_cache"] == {"threshold": 0.9}


def test_exact_cache_jobs_are_unchanged(client: FlaskClient, alice: Account) -> None:
    """cache true and false are stored and shown as before, with no semantic field at all."""
    for cache in (True, False):
        job = client.post("/v1/jobs", json={**VALID, "cache": cache}, headers=auth(alice))
        assert job.status_code == 202
        assert (job.get_json()["cache"], job.get_json()["cache_threshold"]) == (cache, None)
        stored = _stored_request(job.get_json()["id"])
        assert stored["cache"] is cache
        assert "semantic_cache" not in stored["request"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**SEMANTIC, "temperature": 0.7}, 'cache "semantic" needs temperature 0'),
        ({**VALID, "cache": "semantic"}, 'cache "semantic" needs temperature 0'),
        ({**VALID, "cache": True, "cache_threshold": 0.9}, "cache_threshold is only for"),
        ({**SEMANTIC, "cache_threshold": 0.3}, "greater than or equal to 0.5"),
        ({**SEMANTIC, "cache_threshold": 1.5}, "less than or equal to 1"),
        ({**VALID, "cache": "fuzzy"}, "Input should be"),
    ],
)
def test_bad_semantic_fields_are_refused(
    client: FlaskClient, alice: Account, body: dict[str, Any], problem: str
) -> None:
    """Each rule of the two fields is a 422 validation_error saying which."""
    error = error_of(
        client.post("/v1/jobs", json=body, headers=auth(alice)), 422, "validation_error"
    )
    assert any(problem in d["problem"] for d in error["details"]), error


@pytest.fixture
def without_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The backend check looks for a module this installation lacks, as it would without the
    promptq[semantic] extra."""
    monkeypatch.setattr(
        semantic_backend, "MODULES", (*semantic_backend.MODULES, "promptq_not_installed")
    )
    semantic_backend.semantic_backend_installed.cache_clear()
    yield
    monkeypatch.undo()
    semantic_backend.semantic_backend_installed.cache_clear()


def test_semantic_cache_without_the_extra_is_a_422(
    client: FlaskClient, alice: Account, without_backend: None
) -> None:
    """Without the embedding model, cache "semantic" is refused up front with a stable code,
    in a batch too; nothing is admitted, and the other cache modes still work."""
    error = error_of(
        client.post("/v1/jobs", json=SEMANTIC, headers=auth(alice)),
        422,
        "semantic_cache_unavailable",
    )
    assert "promptq[semantic]" in error["message"]
    batch = {"jobs": [{**SEMANTIC, "custom_id": "a"}]}
    error_of(
        client.post("/v1/batches", json=batch, headers=auth(alice)),
        422,
        "semantic_cache_unavailable",
    )
    listed = client.get("/v1/jobs", headers=auth(alice)).get_json()
    assert listed["data"] == []
    exact = client.post("/v1/jobs", json={**VALID, "cache": True}, headers=auth(alice))
    assert exact.status_code == 202


def test_a_semantic_hit_shows_its_similarity(client: FlaskClient, alice: Account) -> None:
    """The attempt that answered from the semantic cache is listed as cached, at no cost, with
    its similarity."""
    job_id = client.post("/v1/jobs", json=SEMANTIC, headers=auth(alice)).get_json()["id"]
    now = datetime.now(UTC)
    with transaction() as session:
        record_attempt(
            session,
            job_id=uuid.UUID(job_id),
            user_id=uuid.UUID(alice.user_id),
            attempt=AttemptRecord(
                provider="openai",
                model="gpt-4o-mini",
                outcome="cached",
                error_code=None,
                error_message=None,
                latency_ms=3,
                input_tokens=9,
                output_tokens=4,
                cost_usd=Decimal(0),
                started_at=now,
                finished_at=now,
                cached=True,
                similarity=0.9731,
            ),
        )
    (attempt,) = client.get(f"/v1/jobs/{job_id}/attempts", headers=auth(alice)).get_json()["data"]
    assert (attempt["outcome"], attempt["cached"], attempt["cost_usd"]) == ("cached", True, "0")
    assert attempt["similarity"] == 0.9731


# Fingerprints the code of 32cbfb4, before any of JobCreate's later fields existed, gave these
# bodies: an Idempotency-Key retried across the upgrade must still find its first job.
EARLIER_FINGERPRINTS = [
    (VALID, "87b1e926f7ffd91ac06b405cd6adb5c4185a9349afaaceba7d0990261efa1145"),
    (
        {**VALID, "model": "gpt-4o", "cache": True, "temperature": 0, "fallbacks": ["gpt-4o-mini"]},
        "fe2d628029784152d7c29d9ffc464d23840f301cd084903ab9bb5fccc95f1f11",
    ),
]


@pytest.mark.parametrize(("body", "digest"), EARLIER_FINGERPRINTS)
def test_idempotency_fingerprints_of_earlier_bodies_hold(body: dict[str, Any], digest: str) -> None:
    """Bodies without the fields added since (cache_threshold, tags, fallback_response, ...)
    keep the fingerprints they had; a field set to other than its default tells bodies apart."""
    assert JobCreate.model_validate(body).fingerprint() == digest
    tighter = JobCreate.model_validate({**SEMANTIC, "cache_threshold": 0.99})
    assert tighter.fingerprint() != JobCreate.model_validate(SEMANTIC).fingerprint()
    tagged = JobCreate.model_validate({**body, "tags": ["nightly"]})
    assert tagged.fingerprint() != digest
