"""Batch lifecycle against a real stack (gunicorn, a job worker, beat, a webhook worker, the
simulator): a batch settles `completed` and its batch.completed webhook arrives, verified with
the official `standardwebhooks` library; a batch cancelled mid-run ends `cancelled` with its
batch.cancelled webhook; listing pages through both; `promptq batch cancel` from the CLI."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import standardwebhooks
from click.testing import CliRunner

from api.cli import main
from devstack.processes import wait_until
from promptq.client import Client
from promptq.client.errors import BatchNotCancellable
from tests.client.conftest import SLOW, Account
from tests.support.stack import RunningStack
from tests.support.webhook_receiver import Delivery, Route, WebhookReceiver

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
WAIT_S = 60
BATCH_EVENTS = ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"]


def _jobs(n: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"row-{i}",
            "model": MODEL,
            "messages": [{"role": "user", "content": f"Hi {uuid.uuid4()}"}],
            "max_tokens": 8,
            **fields,
        }
        for i in range(n)
    ]


def _event_of(route: Route, batch_id: str) -> Delivery:
    """The one delivery `route` received about batch `batch_id`, once it has come."""

    def about() -> list[Delivery]:
        return [
            d
            for d in route.received()
            if d.payload and d.payload["data"].get("batch", {}).get("id") == batch_id
        ]

    wait_until(lambda: len(about()) >= 1, timeout=WAIT_S, what=f"the event of batch {batch_id}")
    [delivery] = about()
    assert route.secret is not None
    # Verified by the receiver with the library; once more here, explicitly.
    assert delivery.verified, delivery.error
    standardwebhooks.Webhook(route.secret).verify(delivery.body, delivery.headers)
    return delivery


def test_completed_and_cancelled_batches_send_verified_events(
    stack: RunningStack, account: Account
) -> None:
    """batch.completed carries the settled batch with its counts; a batch cancelled while its
    slow jobs run goes cancelling -> cancelled and sends batch.cancelled; a second cancel is
    refused; both batches are listed newest first."""
    receiver = WebhookReceiver()
    try:
        route = receiver.route("/batches")
        with Client(stack.api_url, account.key) as client:
            endpoint = client.webhooks.create(route.url, BATCH_EVENTS)
            route.secret = endpoint.secret

            done = client.batches.submit(_jobs(3), metadata={"run": "e2e"})
            settled = client.batches.wait(done.id, timeout=WAIT_S)
            assert settled.status == "completed"
            assert settled.completed_at is not None
            completed = _event_of(route, done.id)
            assert completed.payload is not None
            assert completed.payload["type"] == "batch.completed"
            view = completed.payload["data"]["batch"]
            assert view["status"] == "completed"
            assert view["counts"]["succeeded"] == 3
            assert view["metadata"] == {"run": "e2e"}

            # More slow jobs than the worker has slots: some run, the rest are still queued.
            slow = client.batches.submit(_jobs(8, model=SLOW["model"], max_tokens=64))
            wait_until(
                lambda: client.batches.get(slow.id).counts.running >= 1,
                timeout=WAIT_S,
                what="a job of the slow batch running",
            )
            asked = client.batches.cancel(slow.id)
            assert asked.status in ("cancelling", "cancelled")
            assert asked.counts.cancelled >= 1
            ended = client.batches.wait(slow.id, timeout=WAIT_S)
            assert ended.status == "cancelled"
            assert ended.cancelled_at is not None
            assert ended.counts.queued == ended.counts.running == 0
            cancelled = _event_of(route, slow.id)
            assert cancelled.payload is not None
            assert cancelled.payload["type"] == "batch.cancelled"
            with pytest.raises(BatchNotCancellable):
                client.batches.cancel(slow.id)

            listed = [b.id for b in client.batches.list(page_size=1)]
            assert listed[:2] == [slow.id, done.id]
    finally:
        receiver.close()


def test_cli_batch_cancel(stack: RunningStack, account: Account) -> None:
    """`promptq batch cancel` prints `<id>: <status>`; on a settled batch, one line with the
    API's code and exit 1."""
    env = {"PROMPTQ_URL": stack.api_url, "PROMPTQ_KEY": account.key}
    with Client(stack.api_url, account.key) as client:
        batch = client.batches.submit(_jobs(4, model=SLOW["model"], max_tokens=64))
    first = CliRunner().invoke(main, ["batch", "cancel", batch.id], env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() in (f"{batch.id}: cancelling", f"{batch.id}: cancelled")
    with Client(stack.api_url, account.key) as client:
        client.batches.wait(batch.id, timeout=WAIT_S)
    again = CliRunner().invoke(main, ["batch", "cancel", batch.id], env=env)
    assert again.exit_code == 1
    [line] = again.stderr.strip().splitlines()
    assert line.startswith("Error: batch_not_cancellable: ")
