"""The semantic cache on real processes: gunicorn API, Celery worker (its embedding model loaded
on the first job that asks), simulator, PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Services
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def _account(stack: RunningStack, name: str) -> str:
    user_id = stack.cli("users", "create", name)
    uuid.UUID(user_id)
    return stack.cli("keys", "create", name)


def _job(prompt: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64,
        "temperature": 0,
        "cache": "semantic",
    }


def test_a_paraphrase_is_served_free_and_nothing_else_is(
    stack: RunningStack, clean: Services
) -> None:
    """A user's paraphrase of an answered prompt is answered from the semantic cache at no
    cost, its attempt cached with its similarity; an unrelated prompt of the same user and the
    identical prompt of another user are answered by the model and paid for."""
    alice, bob = _account(stack, "sem-alice"), _account(stack, "sem-bob")

    def run(key: str, prompt: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        job = stack.wait_final(key, stack.submit(key, _job(prompt))["id"])
        assert job["status"] == "succeeded", job
        return job, stack.get(key, f"/v1/jobs/{job['id']}/attempts")["data"]

    calls = stack.sim_stats()["total_requests"]
    first, _ = run(alice, "How do I reverse a list in Python?")
    assert (first["cache"], first["cache_threshold"]) == ("semantic", 0.95)
    assert Decimal(first["cost_usd"]) > 0 and not first["result"]["cached"]

    hit, (attempt,) = run(alice, "How can I reverse a Python list?")
    assert hit["result"]["cached"] and hit["result"]["content"] == first["result"]["content"]
    assert Decimal(hit["cost_usd"]) == 0
    assert (attempt["outcome"], attempt["cached"], attempt["cost_usd"]) == ("cached", True, "0")
    assert 0.95 <= attempt["similarity"] < 1

    unrelated, (paid,) = run(alice, "Give me a recipe for banana bread.")
    assert not unrelated["result"]["cached"] and Decimal(unrelated["cost_usd"]) > 0
    assert paid["similarity"] is None

    other, _ = run(bob, "How do I reverse a list in Python?")
    assert not other["result"]["cached"] and Decimal(other["cost_usd"]) > 0
    assert stack.sim_stats()["total_requests"] == calls + 3
