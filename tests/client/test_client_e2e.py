"""promptq.client against a real stack: submit and wait, a resend after a dropped connection,
429 from a key's own rate limit, batch progress, webhook endpoints and verify_webhook."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.processes import wait_until
from promptq.client import (
    Batch,
    Client,
    NotFound,
    RateLimited,
    ResultEvent,
    RetryPolicy,
    TokenEvent,
    Unauthorized,
    WebhookVerificationError,
    verify_webhook,
)
from promptq.client.errors import JobNotCancellable, JobNotStreamed
from tests.client.conftest import FAILING, SLOW, Account, limited_key
from tests.client.dropping_proxy import DroppingProxy
from tests.support.stack import RunningStack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
WAIT_S = 30


def _messages(text: str = "Hello") -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{text} {uuid.uuid4()}"}]


@pytest.fixture
def client(stack: RunningStack, account: Account) -> Iterator[Client]:
    with Client(stack.api_url, account.key) as running:
        yield running


def test_submit_wait_get_attempts_list_usage(client: Client) -> None:
    seen: list[str] = []
    submitted = client.submit(MODEL, _messages(), priority="high", max_tokens=16)
    assert submitted.status == "queued"
    done = client.wait(submitted.id, timeout=WAIT_S, on_update=lambda job: seen.append(job.status))
    assert done.status == "succeeded", done
    assert done.result is not None and done.result.content
    assert done.usage.total_tokens > 0 and done.cost_usd > 0
    assert seen[-1] == "succeeded"
    assert client.get(submitted.id) == done
    attempts = client.attempts(submitted.id)
    assert [(a.number, a.model) for a in attempts] == [(1, MODEL)]
    assert attempts[0].input_tokens == done.usage.input_tokens
    assert [job.id for job in client.list()] == [submitted.id]
    assert client.usage().totals.cost_usd == done.cost_usd
    with pytest.raises(JobNotCancellable) as raised:
        client.cancel(submitted.id)
    assert raised.value.status == 409
    with pytest.raises(NotFound):
        client.get(str(uuid.uuid4()))


def test_list_iterates_over_every_page(client: Client) -> None:
    ids = {client.submit(MODEL, _messages(), max_tokens=8).id for _ in range(5)}
    listed = [job.id for job in client.list(page_size=2)]
    assert set(listed) == ids and len(listed) == 5


def test_a_resend_after_a_dropped_connection_makes_one_job(
    stack: RunningStack, account: Account
) -> None:
    proxy = DroppingProxy(int(stack.api_url.rsplit(":", 1)[1]), drops=1)
    try:
        with Client(proxy.url, account.key) as through_proxy:
            job = through_proxy.submit(MODEL, _messages(), max_tokens=8)
    finally:
        proxy.close()
    assert len(proxy.dropped) == 1, "the proxy never dropped a connection"
    # The dropped request was handled: its job exists, and the resend returned that same job.
    with Client(stack.api_url, account.key) as direct:
        assert [listed.id for listed in direct.list()] == [job.id]
    assert b"Idempotency-Key" in proxy.dropped[0]


def test_a_key_over_its_rate_limit_raises_rate_limited(
    stack: RunningStack, account: Account
) -> None:
    key = limited_key(stack, account, rpm_limit=1)
    policy = RetryPolicy(max_attempts=3, max_total_s=3)
    with Client(stack.api_url, key, retry=policy) as limited:
        limited.submit(MODEL, _messages(), max_tokens=8)
        started = time.monotonic()
        with pytest.raises(RateLimited) as raised:
            limited.submit(MODEL, _messages(), max_tokens=8)
        elapsed = time.monotonic() - started
    # The window frees up in about a minute: more than the client may wait, so it does not.
    assert raised.value.status == 429
    assert raised.value.retry_after is not None and raised.value.retry_after > 3
    assert elapsed < 3
    with Client(stack.api_url, account.key) as direct:
        assert len(list(direct.list())) == 1


def test_batch_wait_reports_progress_and_results(client: Client) -> None:
    jobs: list[dict[str, Any]] = [
        {"custom_id": f"ok-{n}", "model": MODEL, "messages": _messages(), "max_tokens": 8}
        for n in range(4)
    ]
    jobs.append({"custom_id": "bad", **FAILING, "messages": _messages(), "max_tokens": 8})
    progress: list[tuple[int, int, int]] = []

    def record(batch: Batch) -> None:
        progress.append((batch.counts.done, batch.counts.total, batch.counts.failed))

    submitted = client.batches.submit(jobs, metadata={"test": "progress"})
    assert submitted.counts.total == 5
    done = client.batches.wait(submitted.id, timeout=WAIT_S, progress=record)
    assert done.is_final
    assert progress[-1] == (5, 5, 1)
    assert all(total == 5 for _, total, _ in progress)
    assert [d for d, _, _ in progress] == sorted(d for d, _, _ in progress)
    results = {r.custom_id: r for r in client.batches.results(submitted.id)}
    assert set(results) == {"ok-0", "ok-1", "ok-2", "ok-3", "bad"}
    assert results["bad"].status == "failed" and results["bad"].error is not None
    assert results["ok-0"].status == "succeeded" and results["ok-0"].usage.total_tokens > 0


def test_webhook_endpoints_and_a_verified_delivery(client: Client) -> None:
    receiver = WebhookReceiver()
    try:
        route = receiver.route("/hook")
        endpoint = client.webhooks.create(route.url, ["job.succeeded"], description="client")
        assert endpoint.secret and endpoint.secret.startswith("whsec_")
        route.secret = endpoint.secret
        assert [e.id for e in client.webhooks.list()] == [endpoint.id]
        changed = client.webhooks.update(endpoint.id, description=None, event_types=["job.failed"])
        assert (changed.description, changed.event_types) == (None, ["job.failed"])
        assert client.webhooks.get(endpoint.id).secret is None

        ping = client.webhooks.test(endpoint.id)
        wait_until(lambda: len(route.received()) == 1, timeout=WAIT_S, what="the ping")
        delivery = route.received()[0]
        payload = verify_webhook(endpoint.secret, delivery.headers, delivery.body)
        assert payload["type"] == "ping"
        tampered = delivery.body.replace(b"ping", b"pong")
        with pytest.raises(WebhookVerificationError):
            verify_webhook(endpoint.secret, delivery.headers, tampered)
        wait_until(
            lambda: next(client.webhooks.deliveries(endpoint.id)).status == "succeeded",
            timeout=WAIT_S,
            what="the delivery recorded as succeeded",
        )
        assert [d.id for d in client.webhooks.deliveries(endpoint.id)] == [ping.id]

        client.webhooks.retry(endpoint.id, ping.id)
        wait_until(lambda: len(route.received()) == 2, timeout=WAIT_S, what="the resend")
        again = route.received()[1]
        assert again.webhook_id == delivery.webhook_id
        assert verify_webhook(endpoint.secret, again.headers, again.body)["type"] == "ping"

        client.webhooks.delete(endpoint.id)
        with pytest.raises(NotFound):
            client.webhooks.get(endpoint.id)
    finally:
        receiver.close()


def test_a_wrong_key_is_unauthorized(stack: RunningStack) -> None:
    with Client(stack.api_url, "pq_not-a-key") as wrong, pytest.raises(Unauthorized) as raised:
        wrong.get(str(uuid.uuid4()))
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


def test_stream_follows_a_job_from_its_first_token(client: Client) -> None:
    """A job submitted with stream=True: its tokens come while it runs and add up to its
    answer, and the stream ends with the job exactly as get() returns it."""
    job = client.submit(str(SLOW["model"]), _messages(), stream=True, max_tokens=64)
    assert job.stream
    text = ""
    status_at_first_token = None
    last = None
    for event in client.stream(job.id):
        if isinstance(event, TokenEvent):
            status_at_first_token = status_at_first_token or client.get(job.id).status
            text += event.text
        last = event
    assert status_at_first_token == "running"
    assert isinstance(last, ResultEvent)
    assert last.job == client.get(job.id)
    assert last.job.result is not None and text == last.job.result.content
    assert last.job.result.finish_reason == "stop"
    assert last.job.result.provider_finish_reason == "end_turn"
    # The slow model: still running when asked, so refused rather than answered with its result.
    unstreamed = client.submit(str(SLOW["model"]), _messages(), max_tokens=64)
    with pytest.raises(JobNotStreamed):
        list(client.stream(unstreamed.id))
