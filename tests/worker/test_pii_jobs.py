"""PII scrubbing in the worker, run_job end to end against PostgreSQL, Redis and the simulator:
the provider (the simulator's request log) never sees an original, whether the stored prompt is
the original (kept by the owner's leave) or the scrubbed copy with its sealed mapping; the
answer is restored only when asked, and the final write clears the mapping."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from shared.db import transaction
from shared.input_safety.pii import Scrubber
from shared.input_safety.pii_vault import seal
from shared.models import Job
from shared.settings import get_settings
from tests.conftest import Account
from tests.support.jobs import queued_job
from worker.policies import get_policies
from worker.tasks.run_job import run_job

PROMPT = (
    "Reach jane.doe@example.com at 203.0.113.42, IBAN GB82WEST12345698765432, "
    "key AKIAIOSFODNN7EXAMPLE, phone (415) 555-2671, card 4111 1111 1111 1111, "
    "SSN 123-45-6789."
)
ORIGINALS = (
    "jane.doe@example.com",
    "203.0.113.42",
    "GB82WEST12345698765432",
    "AKIAIOSFODNN7EXAMPLE",
    "(415) 555-2671",
    "4111 1111 1111 1111",
    "123-45-6789",
)
PLACEHOLDERS = (
    "[EMAIL_1]",
    "[IP_1]",
    "[IBAN_1]",
    "[API_KEY_1]",
    "[PHONE_1]",
    "[CARD_1]",
    "[SSN_1]",
)


@pytest.fixture
def vault_key(
    sim: str, make_account: Callable[[str], Account], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PII_VAULT_KEY", key)
    get_settings.cache_clear()
    get_policies.cache_clear()
    yield key
    get_settings.cache_clear()
    get_policies.cache_clear()


def _run(user_id: str, content: str, **values: object) -> Job:
    request = {"messages": [{"role": "user", "content": content}], "max_tokens": 200}
    job_id = queued_job(user_id, dispatched=True, scrub_pii=True, request=request, **values)
    run_job(str(job_id))
    with transaction() as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        session.expunge(job)
    assert job.status == "succeeded", job.error
    return job


def _sent(sim: str) -> str:
    return json.dumps(requests.get(f"{sim}/sim/requests", timeout=5).json())


def test_a_kept_original_is_scrubbed_on_its_way_and_restored(
    vault_key: str, sim: str, make_account: Callable[[str], Account]
) -> None:
    """The stored original goes out scrubbed; the answer (the simulator echoes the prompt)
    comes back with the originals in place of the placeholders."""
    job = _run(make_account("alice").user_id, PROMPT, restore_pii=True)
    sent = _sent(sim)
    assert all(placeholder in sent for placeholder in PLACEHOLDERS)
    assert not any(original in sent for original in ORIGINALS)
    assert job.result is not None
    assert all(original in job.result["content"] for original in ORIGINALS)
    assert job.request["messages"][0]["content"] == PROMPT


def test_a_scrubbed_copy_is_restored_from_its_sealed_mapping(
    vault_key: str, sim: str, make_account: Callable[[str], Account]
) -> None:
    """The stored copy the API scrubbed, with its sealed mapping: the provider sees the
    placeholders, the answer is restored, and the mapping is gone after the final write."""
    scrubber = Scrubber()
    stored = scrubber.scrub(PROMPT)
    vault = seal(scrubber.originals, vault_key)
    job = _run(make_account("alice").user_id, stored, restore_pii=True, pii_vault=vault)
    assert not any(original in _sent(sim) for original in ORIGINALS)
    assert job.result is not None
    assert all(original in job.result["content"] for original in ORIGINALS)
    assert job.pii_vault is None


def test_without_restore_the_answer_keeps_the_placeholders(
    vault_key: str, sim: str, make_account: Callable[[str], Account]
) -> None:
    """scrub_pii alone: nothing of the originals in the call or in the stored answer."""
    job = _run(make_account("alice").user_id, PROMPT)
    assert not any(original in _sent(sim) for original in ORIGINALS)
    assert job.result is not None
    assert all(placeholder in job.result["content"] for placeholder in PLACEHOLDERS)
    assert not any(original in job.result["content"] for original in ORIGINALS)
