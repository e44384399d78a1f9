"""The whole path on real processes: gunicorn API, Celery worker, simulator, Postgres, Redis."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import select

from shared.db import transaction
from shared.models import Job, JobAttempt, UsageRecord
from shared.pricing import price_for
from sim.replies import complete
from tests.conftest import Services
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def _account(stack: RunningStack, name: str) -> str:
    """A user and key made with the admin CLI, as an operator would."""
    user_id = stack.cli("users", "create", name)
    uuid.UUID(user_id)
    key = stack.cli("keys", "create", name)
    assert key.startswith("pq_")
    return key


CLAUDE_MESSAGES = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is a job queue?"},
]


@pytest.mark.parametrize(
    ("model", "messages", "max_tokens", "finish_reasons"),
    [
        (
            "gpt-4o-mini",
            [{"role": "user", "content": "Summarise the ticket about the broken printer."}],
            256,
            ("stop", "stop"),
        ),
        ("claude-haiku-4-5", CLAUDE_MESSAGES, 64, ("stop", "end_turn")),
        # The simulator cuts a reply longer than max_tokens, as the real APIs do.
        ("claude-haiku-4-5", CLAUDE_MESSAGES, 3, ("length", "max_tokens")),
    ],
)
def test_job_succeeds_with_reply_tokens_and_exact_cost(
    stack: RunningStack,
    clean: Services,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    finish_reasons: tuple[str, str],
) -> None:
    """A job submitted over HTTP is run by the worker through the official SDK and the simulator;
    the reply, token counts and the cost row in Postgres match the simulator and price table,
    and the result's finish_reason is promptq's word beside the provider's own."""
    key = _account(stack, "e2e-user")
    accepted = stack.submit(key, {"model": model, "messages": messages, "max_tokens": max_tokens})
    job = stack.wait_final(key, accepted["id"])

    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    chat = [m for m in messages if m["role"] != "system"] if system else messages
    expected = complete(model, chat, max_tokens, system=system)
    assert job["status"] == "succeeded", job
    assert job["result"]["content"] == expected.text
    assert (job["result"]["finish_reason"], job["result"]["provider_finish_reason"]) == (
        finish_reasons
    )
    assert job["usage"]["input_tokens"] == expected.input_tokens
    assert job["usage"]["output_tokens"] == expected.output_tokens
    assert job["started_at"] and job["finished_at"]

    cost = price_for(model).cost(expected.input_tokens, expected.output_tokens)
    assert cost > 0
    assert Decimal(job["cost_usd"]) == cost
    with transaction() as session:
        usage = session.scalars(select(UsageRecord)).all()
        attempts = session.scalars(select(JobAttempt)).all()
        row = session.get(Job, uuid.UUID(job["id"]))
        assert row is not None
    assert len(attempts) == 1
    assert attempts[0].outcome == "succeeded"
    assert attempts[0].provider == price_for(model).provider
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    # To the cent's millionth (1e-8 dollars) - stored exactly, so equal outright.
    assert usage[0].cost_usd.quantize(Decimal("1e-8")) == cost.quantize(Decimal("1e-8"))
    assert usage[0].cost_usd == cost
    assert row.cost_usd == cost


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "POST",
        "/v1/jobs",
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "invalid_json",
    ),
    (
        "POST",
        "/v1/jobs",
        {"data": b'{"model": "gpt-4o-mini"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"messages": [{"role": "user", "content": "x"}]}},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"model": "gpt-4o-mini", "messages": []}},
        422,
        "validation_error",
    ),
    ("POST", "/v1/jobs", {"json": {"model": ["gpt"], "messages": "hi"}}, 422, "validation_error"),
    (
        "POST",
        "/v1/jobs",
        {"json": {"model": "nope-1", "messages": [{"role": "user", "content": "x"}]}},
        422,
        "unknown_model",
    ),
    ("GET", f"/v1/jobs/{uuid.uuid4()}", {}, 404, "not_found"),
    ("GET", "/v1/jobs/%00%ff", {}, 404, "not_found"),
    ("PUT", "/v1/jobs", {}, 405, "method_not_allowed"),
]


def test_bad_input_is_4xx_json_and_never_a_traceback(stack: RunningStack, clean: Services) -> None:
    """Every malformed request to the served API gets a 4xx JSON error with a stable code, a
    wrong or missing key is 401, another user's job is 404, and the API log has no traceback."""
    key = _account(stack, "owner")
    other = _account(stack, "intruder")
    auth = {"Authorization": f"Bearer {key}"}
    for method, path, kwargs, status, code in BAD_REQUESTS:
        extra = dict(kwargs)
        headers = {**auth, **extra.pop("headers", {})}
        response = requests.request(
            method, stack.api_url + path, headers=headers, timeout=10, **extra
        )
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["error"]["code"] == code
    for headers in ({}, {"Authorization": "Bearer pq_wrong"}):
        response = requests.post(stack.api_url + "/v1/jobs", json={}, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    job = stack.submit(
        key, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    )
    response = requests.get(
        f"{stack.api_url}/v1/jobs/{job['id']}",
        headers={"Authorization": f"Bearer {other}"},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    stack.wait_final(key, job["id"])
    api_log = stack.processes["api"].log_text()
    assert "Traceback" not in api_log
    assert '"status": 500' not in api_log and '" 500 ' not in api_log


def test_a_job_whose_models_all_fail_succeeds_with_its_fallback_response(
    stack: RunningStack, clean: Services
) -> None:
    """Every model of the chain answers 500: the job succeeds, degraded, with the text it carried,
    at no cost, and its attempts still show each model's failures; a job without the text fails."""
    key = _account(stack, "degraded-user")
    chain = {"model": "gpt-4.1-mini", "fallbacks": ["claude-haiku-4-5"]}
    stack.set_faults(
        *({"model": m, "kind": "server_error"} for m in ("gpt-4.1-mini", "claude-haiku-4-5"))
    )
    try:
        messages = [{"role": "user", "content": "Summarise the incident."}]
        text = "The summary service is busy; your ticket is kept and will be summarised later."
        degraded = stack.submit(key, {**chain, "messages": messages, "fallback_response": text})
        failing = stack.submit(key, {**chain, "messages": messages})
        job = stack.wait_final(key, degraded["id"])
        failed = stack.wait_final(key, failing["id"])
    finally:
        stack.clear_faults()

    assert job["status"] == "succeeded", job
    assert job["fallback_response"] == text
    assert job["result"]["content"] == text
    assert job["result"]["degraded"] is True
    assert (job["result"]["provider"], job["result"]["model"]) == ("promptq", "fallback_response")
    assert Decimal(job["cost_usd"]) == 0
    attempts = stack.get(key, f"/v1/jobs/{job['id']}/attempts")["data"]
    assert {a["model"] for a in attempts} == {"gpt-4.1-mini", "claude-haiku-4-5"}
    assert {a["outcome"] for a in attempts} <= {"failed", "skipped"}
    assert failed["status"] == "failed"
    assert failed["result"] is None and failed["fallback_response"] is None


def test_an_auto_job_walks_the_chain_it_was_routed_to(stack: RunningStack, clean: Services) -> None:
    """`model: "auto"` picks gpt-4o-mini; when it fails the worker goes on down the routed chain
    (gpt-4.1-mini, the next cheapest), not gpt-4o-mini's catalogue fallback."""
    key = _account(stack, "auto-user")
    stack.set_faults({"model": "gpt-4o-mini", "kind": "server_error"})
    try:
        accepted = stack.submit(
            key, {"model": "auto", "messages": [{"role": "user", "content": "Route me."}]}
        )
        job = stack.wait_final(key, accepted["id"])
    finally:
        stack.clear_faults()
    assert accepted["routing"]["chain"][:2] == ["gpt-4o-mini", "gpt-4.1-mini"]
    assert price_for("gpt-4o-mini").fallbacks == ("claude-3-5-haiku-latest",)
    assert job["status"] == "succeeded", job
    assert job["result"]["model"] == "gpt-4.1-mini"
