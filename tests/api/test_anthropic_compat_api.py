"""The Anthropic-compatible Message Batches API (/anthropic/v1/messages/batches): translation of
requests into native jobs, refusals in Anthropic's error shape, the Message Batch object, its
counts and rendered results, listing both ways and cancel, through the Flask app on the real
PostgreSQL and Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from shared.db import transaction
from shared.models import Batch, Job
from shared.redis_client import get_redis
from shared.repositories.batches import expire_overdue
from shared.settings import get_settings
from tests.api.job_helpers import auth, job_count
from tests.conftest import Account
from tests.support.jobs import succeeded_result

BASE = "/anthropic/v1/messages/batches"


def _key(account: Account, **extra: str) -> dict[str, str]:
    """The key as the anthropic SDK sends it."""
    return {"X-Api-Key": account.key, "anthropic-version": "2023-06-01", **extra}


def _request(custom_id: str, **params: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 32,
            "messages": [{"role": "user", "content": "Hi"}],
            **params,
        },
    }


def _create(
    client: FlaskClient, account: Account, *requests: dict[str, Any], **headers: str
) -> Any:
    return client.post(BASE, json={"requests": list(requests)}, headers=_key(account, **headers))


def anthropic_error(response: Any, status: int, error_type: str) -> str:
    """The message of `response`'s error in Anthropic's shape, after checking status and type."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == "error" and body["request_id"]
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    return body["error"]["message"]


def _jobs(batch_id: str) -> list[Job]:
    native = uuid.UUID(hex=batch_id.removeprefix("msgbatch_"))
    with transaction() as session:
        return list(session.scalars(select(Job).where(Job.batch_id == native)))


def test_requests_become_native_low_priority_jobs(client: FlaskClient, alice: Account) -> None:
    """Each request is a job of one native batch, low priority unless Promptq-Priority says
    otherwise; a system prompt and text blocks become promptq's messages."""
    created = _create(
        client,
        alice,
        _request(
            "a",
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ],
            temperature=0.5,
            metadata={"user_id": "u-1"},
        ),
        _request("b"),
    )
    assert created.status_code == 200, created.get_data(as_text=True)
    batch = MessageBatch.model_validate(created.get_json())
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 2 and batch.results_url is None
    assert (batch.expires_at - batch.created_at).total_seconds() == 86_400
    jobs = {job.custom_id: job for job in _jobs(batch.id)}
    assert {job.priority for job in jobs.values()} == {"low"}
    assert jobs["a"].request["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert jobs["a"].request["temperature"] == 0.5 and jobs["a"].meta == {"user_id": "u-1"}
    assert jobs["b"].request["max_tokens"] == 32 and jobs["b"].model == "claude-haiku-4-5"

    urgent = _create(client, alice, _request("c"), **{"Promptq-Priority": "high"})
    assert {job.priority for job in _jobs(urgent.get_json()["id"])} == {"high"}
    assert client.get(f"{BASE}/{batch.id}", headers=_key(alice)).get_json() == created.get_json()
    native = client.get(f"/v1/batches/{jobs['a'].batch_id}", headers=auth(alice)).get_json()
    assert native["origin"] == {"api": "anthropic", "id": batch.id}


@pytest.mark.parametrize(
    ("request_body", "names"),
    [
        (_request("a", tools=[]), "requests.1.params.tools"),
        (
            {"custom_id": "a", "params": {"model": "claude-haiku-4-5", "messages": []}},
            "requests.1.params.max_tokens",
        ),
        (_request("a", model="claude-0"), "requests.1.params.model"),
        (
            _request("a", messages=[{"role": "system", "content": "x"}]),
            "requests.1.params.messages.0.role",
        ),
        (
            _request("a", messages=[{"role": "user", "content": [{"type": "image"}]}]),
            "requests.1.params.messages.0.content.0.type",
        ),
        (_request("a", messages=[]), "requests.1.params.messages"),
        (_request("a", max_tokens=0), "requests.1.params.max_tokens"),
        (_request("bad id!"), "requests.1.custom_id"),
    ],
)
def test_a_request_promptq_cannot_serve_refuses_the_batch(
    client: FlaskClient, alice: Account, request_body: dict[str, Any], names: str
) -> None:
    """A request promptq cannot serve is a 400 naming it; no job of the batch is admitted."""
    message = anthropic_error(
        _create(client, alice, _request("ok"), request_body), 400, "invalid_request_error"
    )
    assert names in message
    assert job_count(alice) == 0


def test_other_refusals(client: FlaskClient, alice: Account) -> None:
    """A repeated custom_id, a bad priority header, no requests, no key, someone else's or an
    unknown batch: each in Anthropic's shape."""
    repeated = _create(client, alice, _request("a"), _request("a"))
    assert "requests.1.custom_id" in anthropic_error(repeated, 400, "invalid_request_error")
    bad_priority = _create(client, alice, _request("a"), **{"Promptq-Priority": "urgent"})
    assert "Promptq-Priority" in anthropic_error(bad_priority, 400, "invalid_request_error")
    anthropic_error(
        client.post(BASE, json={"requests": []}, headers=_key(alice)), 400, "invalid_request_error"
    )
    missing = anthropic_error(client.get(BASE), 401, "authentication_error")
    assert "X-Api-Key" in missing
    anthropic_error(
        client.get(f"{BASE}/msgbatch_nope", headers=_key(alice)), 404, "not_found_error"
    )
    anthropic_error(
        client.get(f"{BASE}/{'msgbatch_' + '0' * 32}", headers=_key(alice)), 404, "not_found_error"
    )
    assert job_count(alice) == 0


def test_a_native_batch_is_not_a_message_batch(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Only batches created through this surface are seen through it, and only by their owner."""
    native = client.post(
        "/v1/batches",
        json={
            "jobs": [
                {
                    "custom_id": "n",
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "Hi"}],
                }
            ]
        },
        headers=auth(alice),
    ).get_json()
    as_message_batch = "msgbatch_" + uuid.UUID(native["id"]).hex
    anthropic_error(
        client.get(f"{BASE}/{as_message_batch}", headers=_key(alice)), 404, "not_found_error"
    )
    mine = _create(client, alice, _request("a")).get_json()["id"]
    bob = make_account("bob")
    anthropic_error(client.get(f"{BASE}/{mine}", headers=_key(bob)), 404, "not_found_error")
    assert client.get(BASE, headers=_key(alice)).get_json()["data"][0]["id"] == mine
    assert client.get(BASE, headers=_key(bob)).get_json()["data"] == []


def _finish(batch_id: str) -> None:
    """As workers would: a succeeds (answered by OpenAI, then by Anthropic for a2), b fails;
    c stays queued. Then the batch expires, so c is expired."""
    anthropic_answer = {
        **succeeded_result("Hej"),
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "finish_reason": "length",
        "provider_finish_reason": "max_tokens",
    }
    outcomes = {
        "a": ("succeeded", succeeded_result("Hello"), None),
        "a2": ("succeeded", anthropic_answer, None),
        "b": ("failed", None, {"code": "provider_error", "message": "no"}),
    }
    native = uuid.UUID(hex=batch_id.removeprefix("msgbatch_"))
    with transaction() as session:
        for custom_id, (status, result, error) in outcomes.items():
            session.execute(
                update(Job)
                .where(Job.batch_id == native, Job.custom_id == custom_id)
                .values(
                    status=status,
                    result=result,
                    error=error,
                    input_tokens=3,
                    output_tokens=4,
                    cost_usd=Decimal("0.00001"),
                    reserved_usd=0,
                    finished_at=func.now(),
                )
            )
        session.execute(update(Batch).where(Batch.id == native).values(expires_at=func.now()))
        expire_overdue(session, get_settings().public_base_url, 10)


def test_an_ended_batch_counts_and_renders_its_results(client: FlaskClient, alice: Account) -> None:
    """Once ended, request_counts tally each outcome and results_url streams one line a request,
    each a real MessageBatchIndividualResponse: succeeded (stop reasons in Anthropic's words),
    errored, expired."""
    batch_id = _create(
        client, alice, _request("a"), _request("a2"), _request("b"), _request("c")
    ).get_json()["id"]
    early = client.get(f"{BASE}/{batch_id}/results", headers=_key(alice))
    assert "not ended" in anthropic_error(early, 404, "not_found_error")
    _finish(batch_id)
    ended = MessageBatch.model_validate(
        client.get(f"{BASE}/{batch_id}", headers=_key(alice)).get_json()
    )
    assert ended.processing_status == "ended" and ended.ended_at is not None
    counts = ended.request_counts
    assert (
        counts.processing,
        counts.succeeded,
        counts.errored,
        counts.canceled,
        counts.expired,
    ) == (
        0,
        2,
        1,
        0,
        1,
    )
    assert ended.results_url is not None and ended.results_url.startswith("http")
    path = ended.results_url.split("://", 1)[1].split("/", 1)[1]
    response = client.get(f"/{path}", headers=_key(alice))
    assert response.status_code == 200, response.get_data(as_text=True)
    lines = {
        line.custom_id: line
        for line in (
            MessageBatchIndividualResponse.model_validate(json.loads(raw))
            for raw in response.data.splitlines()
        )
    }
    assert sorted(lines) == ["a", "a2", "b", "c"]
    a = lines["a"].result
    assert a.type == "succeeded"
    assert a.message.content[0].type == "text" and a.message.content[0].text == "Hello"
    assert a.message.stop_reason == "end_turn" and a.message.model == "gpt-4o-mini"
    assert (a.message.usage.input_tokens, a.message.usage.output_tokens) == (3, 4)
    a2 = lines["a2"].result
    assert a2.type == "succeeded" and a2.message.stop_reason == "max_tokens"
    b = lines["b"].result
    assert b.type == "errored" and "provider_error" in b.error.error.message
    assert lines["c"].result.type == "expired"


def test_lists_page_both_ways(client: FlaskClient, alice: Account) -> None:
    """Newest first; after_id pages on, before_id pages back, has_more says whether more lie
    that way."""
    ids = [_create(client, alice, _request("a")).get_json()["id"] for _ in range(4)]
    newest_first = ids[::-1]
    first = client.get(f"{BASE}?limit=2", headers=_key(alice)).get_json()
    assert [b["id"] for b in first["data"]] == newest_first[:2] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[1])
    on = client.get(f"{BASE}?limit=2&after_id={first['last_id']}", headers=_key(alice)).get_json()
    assert [b["id"] for b in on["data"]] == newest_first[2:] and on["has_more"] is False
    back = client.get(f"{BASE}?limit=1&before_id={on['first_id']}", headers=_key(alice)).get_json()
    assert [b["id"] for b in back["data"]] == [newest_first[1]] and back["has_more"] is True
    both = client.get(f"{BASE}?after_id={ids[0]}&before_id={ids[1]}", headers=_key(alice))
    anthropic_error(both, 400, "invalid_request_error")


def test_cancel(client: FlaskClient, alice: Account) -> None:
    """Cancel of a batch whose jobs are all queued ends it at once, every request canceled;
    cancelling an ended batch is refused."""
    batch_id = _create(client, alice, _request("a"), _request("b")).get_json()["id"]
    cancelled = client.post(f"{BASE}/{batch_id}/cancel", headers=_key(alice))
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    batch = MessageBatch.model_validate(cancelled.get_json())
    assert batch.processing_status == "ended" and batch.cancel_initiated_at is not None
    assert batch.request_counts.canceled == 2 and batch.ended_at is not None
    results = client.get(f"{BASE}/{batch_id}/results", headers=_key(alice))
    assert [json.loads(raw)["result"] for raw in results.data.splitlines()] == [
        {"type": "canceled"},
        {"type": "canceled"},
    ]
    again = client.post(f"{BASE}/{batch_id}/cancel", headers=_key(alice))
    anthropic_error(again, 409, "invalid_request_error")


def test_a_broker_that_is_away_is_503_in_anthropic_shape(
    client: FlaskClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission cannot count the key's limits without Redis: 503 with Retry-After, shaped as
    Anthropic's errors are, so the SDK retries it."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    get_redis.cache_clear()
    try:
        response = _create(client, alice, _request("a"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        get_redis.cache_clear()
    assert "broker_unavailable" in anthropic_error(response, 503, "api_error")
    assert int(response.headers["Retry-After"]) >= 1
