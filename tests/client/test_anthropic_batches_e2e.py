"""The Anthropic-compatible Message Batches API against a real stack (gunicorn, a job worker,
beat, a webhook worker, the simulator), driven by the official `anthropic` SDK: a batch created,
retrieved until `ended`, its results parsed into the SDK's types and its batch.completed
webhook verified with `standardwebhooks`; a batch cancelled while its jobs run ends with its
unstarted requests canceled; refusals raise the SDK's own errors."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
import standardwebhooks
from anthropic.types.messages import MessageBatch

from devstack.processes import wait_until
from promptq.client import Client
from tests.client.conftest import SLOW, Account
from tests.support.stack import RunningStack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

WAIT_S = 60


def _request(custom_id: str, model: str = "claude-haiku-4-5", max_tokens: int = 16) -> dict:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": max_tokens,
            "system": "Answer in one word.",
            "messages": [{"role": "user", "content": f"Say {custom_id}"}],
        },
    }


@pytest.fixture
def anthropic_client(stack: RunningStack, account: Account) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"{stack.api_url}/anthropic", api_key=account.key, max_retries=0
    ) as client:
        yield client


def _ended(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    seen: list[MessageBatch] = []

    def ended() -> bool:
        seen.append(client.messages.batches.retrieve(batch_id))
        return seen[-1].processing_status == "ended"

    wait_until(ended, timeout=WAIT_S, what=f"message batch {batch_id} to end")
    return seen[-1]


def test_batch_ends_with_messages_and_a_verified_webhook(
    stack: RunningStack, account: Account, anthropic_client: anthropic.Anthropic
) -> None:
    """create -> retrieve until ended -> results, each a succeeded Message (an OpenAI model's
    answer too: any provider); batch.completed arrives signed, naming the batch by its
    Anthropic id; the batch is listed."""
    receiver = WebhookReceiver()
    try:
        route = receiver.route("/message-batches")
        with Client(stack.api_url, account.key) as promptq:
            route.secret = promptq.webhooks.create(route.url, ["batch.completed"]).secret
        batch = anthropic_client.messages.batches.create(
            requests=[_request("r0"), _request("r1"), _request("r2", model="gpt-4o-mini")]
        )
        assert batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3
        done = _ended(anthropic_client, batch.id)
        assert done.ended_at is not None and done.results_url is not None
        assert done.request_counts.succeeded == 3 and done.request_counts.processing == 0
        results = {
            r.custom_id: r.result for r in anthropic_client.messages.batches.results(batch.id)
        }
        assert sorted(results) == ["r0", "r1", "r2"]
        for custom_id, result in results.items():
            assert result.type == "succeeded", (custom_id, result)
            message = result.message
            assert message.role == "assistant" and message.content[0].type == "text"
            assert message.content[0].text
            assert message.stop_reason in ("end_turn", "max_tokens")
            assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        assert results["r2"].message.model == "gpt-4o-mini"
        assert batch.id in [b.id for b in anthropic_client.messages.batches.list(limit=5)]

        def event() -> list:
            return [
                d
                for d in route.received()
                if d.payload and d.payload["data"]["batch"]["origin"]["id"] == batch.id
            ]

        wait_until(lambda: len(event()) == 1, timeout=WAIT_S, what="the batch.completed event")
        [delivery] = event()
        assert delivery.verified, delivery.error
        standardwebhooks.Webhook(route.secret).verify(delivery.body, delivery.headers)
        assert delivery.payload is not None
        assert delivery.payload["type"] == "batch.completed"
        assert delivery.payload["data"]["batch"]["origin"]["api"] == "anthropic"
    finally:
        receiver.close()


def test_cancel_while_jobs_run(
    stack: RunningStack, anthropic_client: anthropic.Anthropic, account: Account
) -> None:
    """Cancelled once a request is running: canceling until that one finishes, then ended; the
    running request still succeeds, the unstarted ones are canceled; the counts add up."""
    batch = anthropic_client.messages.batches.create(
        requests=[_request(f"s{i}", model=SLOW["model"], max_tokens=64) for i in range(8)]
    )
    native = batch.id.removeprefix("msgbatch_")
    wait_until(
        lambda: stack.get(account.key, f"/v1/batches/{native}")["counts"]["running"] >= 1,
        timeout=WAIT_S,
        what="a request of the slow batch running",
    )
    asked = anthropic_client.messages.batches.cancel(batch.id)
    assert asked.cancel_initiated_at is not None
    assert asked.processing_status in ("canceling", "ended")
    ended = _ended(anthropic_client, batch.id)
    counts = ended.request_counts
    assert counts.canceled >= 1 and counts.succeeded >= 1
    assert counts.succeeded + counts.errored + counts.canceled + counts.expired == 8
    outcomes = [r.result.type for r in anthropic_client.messages.batches.results(batch.id)]
    assert sorted(outcomes) == sorted(
        ["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled
    )
    with pytest.raises(anthropic.ConflictError):
        anthropic_client.messages.batches.cancel(batch.id)


def test_refusals_are_the_sdks_errors(anthropic_client: anthropic.Anthropic) -> None:
    """An unknown model is a BadRequestError naming the request; an unknown batch NotFound."""
    with pytest.raises(anthropic.BadRequestError) as refused:
        anthropic_client.messages.batches.create(
            requests=[_request("ok"), _request("bad", model="claude-0")]
        )
    assert "requests.1.params.model" in refused.value.message
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.batches.retrieve("msgbatch_" + "0" * 32)
