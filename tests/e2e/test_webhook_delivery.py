"""Webhook delivery on real processes: gunicorn API, a Celery job worker, a Celery worker on the
webhooks queue, beat (whose dispatcher publishes due retries), the simulator, and a real HTTP
receiver in this process that verifies every delivery with the official Standard Webhooks
library. The retry schedule is compressed to half a second between attempts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from devstack.processes import wait_until
from shared.models import FINAL_STATUSES
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack
from tests.support.webhook_receiver import (
    HANG,
    Delivery,
    Reply,
    Route,
    WebhookReceiver,
    deliveries,
    redirect,
    register_endpoint,
)

pytestmark = pytest.mark.e2e

TIMEOUT_S = 1.0
SCHEDULE = (0, 0.5, 0.5, 0.5, 0.5)
ENV: dict[str, str] = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_SCHEDULE_S": ",".join(str(s) for s in SCHEDULE),
    "WEBHOOK_JITTER": "0",
    "WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
    "WEBHOOK_LEASE_S": "4",
    "WEBHOOK_DISPATCH_INTERVAL_S": "0.3",
    "WEBHOOK_REDISPATCH_S": "5",
    # The failing job's retries and fallback take a fraction of a second.
    "RETRY_BASE_S": "0.05",
    "RETRY_CAP_S": "0.5",
    "SHUTDOWN_GRACE_S": "2",
}
MODEL = "gpt-4o-mini"
# A chain whose every call fails (simulator rules below): its jobs end failed.
FAILING = {"model": "o4-mini", "fallbacks": ["gpt-4.1-mini"]}
# A model whose calls take long enough to cancel the job while it runs.
SLOW_MODEL = "claude-haiku-4-5"
SLOW_CALL_MS = 2000
# Longer than the 2 KiB of a receiver's answer that promptq keeps.
LONG_ERROR_PAGE = "".join(f"line {n} of a long error page\n" for n in range(200))
WAIT_S = 30


@pytest.fixture(scope="module")
def hooks(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack for the module (each test has its own user, endpoints and receiver)."""
    log_dir: Path = tmp_path_factory.mktemp("webhook-stack")
    stack = start_stack(
        services.database_url,
        services.redis_url,
        log_dir,
        extra_env=ENV,
        beat=True,
        webhook_workers=1,
    )
    try:
        stack.set_faults(
            {"model": FAILING["model"], "kind": "server_error"},
            *({"model": m, "kind": "server_error"} for m in FAILING["fallbacks"]),
            {"model": SLOW_MODEL, "latency_ms": SLOW_CALL_MS},
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    yield running
    running.close()


def _account(stack: RunningStack, label: str) -> str:
    """A user of this test alone and its key, made with the admin CLI."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    stack.cli("users", "create", name)
    return stack.cli("keys", "create", name)


def _job(n: int = 0, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"Webhook test request {n} {uuid.uuid4()}."}],
        "max_tokens": 16,
        **extra,
    }


def _post(stack: RunningStack, key: str, path: str, expect: int) -> dict[str, Any]:
    response = requests.post(
        f"{stack.api_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == expect, response.text
    return response.json()


def _message(stack: RunningStack, key: str, endpoint_id: str, message_id: str) -> dict[str, Any]:
    return next(m for m in deliveries(stack, key, endpoint_id) if m["id"] == message_id)


def _wait_message(
    stack: RunningStack, key: str, endpoint_id: str, status: str, count: int = 1
) -> list[dict[str, Any]]:
    """Wait until the endpoint has `count` messages, all in `status`; those messages."""
    seen: list[dict[str, Any]] = []

    def settled() -> bool:
        seen[:] = deliveries(stack, key, endpoint_id)
        return len(seen) == count and all(m["status"] == status for m in seen)

    wait_until(settled, timeout=WAIT_S, interval=0.1, what=f"{count} {status} deliveries")
    return seen


def _wait_received(route: Route, count: int) -> list[Delivery]:
    wait_until(
        lambda: len(route.received()) >= count,
        timeout=WAIT_S,
        what=f"{count} requests at {route.path}",
    )
    return route.received()


def _assert_verified(received: list[Delivery]) -> None:
    bad = [(d.webhook_id, d.error) for d in received if not d.verified]
    assert not bad, f"deliveries that did not verify with their secret: {bad}"


def _by_job(received: list[Delivery]) -> dict[str, Delivery]:
    return {d.payload["data"]["job"]["id"]: d for d in received}


def test_final_states_reach_endpoints_and_the_callback_url(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """Succeeded, failed and cancelled jobs each reach an endpoint subscribed to everything and
    their callback_url, signed with the endpoint's secret and the callback secret respectively;
    the job in the payload is the job GET /v1/jobs/<id> shows; an endpoint subscribed to
    job.failed alone gets only the failure."""
    key = _account(hooks, "events")
    everything = receiver.route("/everything")
    failures = receiver.route("/failures")
    callback = receiver.route("/callback")
    everything_id = register_endpoint(hooks, key, everything)
    failures_id = register_endpoint(hooks, key, failures, ["job.failed"])
    callback.secret = hooks.get(key, "/v1/callback-secret")["secret"]

    ok = hooks.submit(key, _job(1, callback_url=callback.url))["id"]
    failed = hooks.submit(key, _job(2, **FAILING, callback_url=callback.url))["id"]
    cancelled = hooks.submit(key, _job(3, SLOW_MODEL, callback_url=callback.url))["id"]
    wait_until(
        lambda: hooks.get(key, f"/v1/jobs/{cancelled}")["status"] == "running",
        timeout=WAIT_S,
        what="the slow job to run",
    )
    assert _post(hooks, key, f"/v1/jobs/{cancelled}/cancel", 200)["status"] == "cancelled"
    assert hooks.wait_final(key, ok)["status"] == "succeeded"
    assert hooks.wait_final(key, failed)["status"] == "failed"

    at_endpoint = _by_job(_wait_received(everything, 3))
    at_callback = _by_job(_wait_received(callback, 3))
    _assert_verified([*at_endpoint.values(), *at_callback.values()])
    expected = {ok: "job.succeeded", failed: "job.failed", cancelled: "job.cancelled"}
    assert {j: d.payload["type"] for j, d in at_endpoint.items()} == expected
    assert {j: d.payload["type"] for j, d in at_callback.items()} == expected
    for job_id in (ok, failed):
        shown = hooks.get(key, f"/v1/jobs/{job_id}")
        assert shown["status_url"] == f"{hooks.api_url}/v1/jobs/{job_id}"
        assert at_endpoint[job_id].payload["data"]["job"] == shown
        assert at_callback[job_id].payload["data"]["job"] == shown
    assert at_endpoint[cancelled].payload["data"]["job"]["status"] == "cancelled"

    # Two messages per event, each signed only with its own target's secret.
    assert not {d.webhook_id for d in at_endpoint.values()} & {
        d.webhook_id for d in at_callback.values()
    }
    assert everything.secret
    with pytest.raises(WebhookVerificationError):
        Webhook(everything.secret).verify(at_callback[ok].body, at_callback[ok].headers)

    # Its message was made in the same transaction as the other endpoint's job.failed, which
    # has arrived; nothing was made for the success or the cancellation.
    assert [d.payload["type"] for d in _wait_received(failures, 1)] == ["job.failed"]
    _assert_verified(failures.received())
    only = _wait_message(hooks, key, failures_id, "succeeded")
    assert [(m["event_type"], m["job_id"]) for m in only] == [("job.failed", failed)]

    # The worker still running the cancelled job's call finishes it without a second event.
    wait_until(
        lambda: hooks.get(key, f"/v1/jobs/{cancelled}/attempts")["data"],
        timeout=WAIT_S,
        what="the cancelled job's call to end",
    )
    events = _wait_message(hooks, key, everything_id, "succeeded", count=3)
    assert sorted(m["event_type"] for m in events) == sorted(expected.values())
    assert len(callback.received()) == 3


def test_failed_attempts_are_retried_with_the_same_webhook_id(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """500 three times, then 200: delivered on the fourth attempt, every attempt carrying the
    same webhook-id, and the deliveries API shows each status, latency and the start of the
    receiver's answer."""
    key = _account(hooks, "retries")
    route = receiver.route("/flaky", [Reply(500, LONG_ERROR_PAGE)] * 3)
    endpoint_id = register_endpoint(hooks, key, route)
    hooks.submit(key, _job())

    (message,) = _wait_message(hooks, key, endpoint_id, "succeeded")
    attempts = message["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 200]
    assert [a["outcome"] for a in attempts] == ["failed"] * 3 + ["succeeded"]
    assert [a["error_code"] for a in attempts] == ["http_status"] * 3 + [None]
    assert message["attempt_count"] == 4
    assert all(isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0 for a in attempts)
    assert all(a["peer"] and a["peer"].startswith("127.0.0.1") for a in attempts)
    assert attempts[0]["response_body"] == LONG_ERROR_PAGE[:2048]
    assert attempts[3]["response_body"] == "ok"
    assert route.ids() == [message["id"]] * 4
    _assert_verified(route.received())


def test_410_disables_the_endpoint_after_one_attempt(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """410 Gone: the message fails at once, the endpoint is disabled and says why, and a later
    event makes no message for it (while an enabled endpoint of the same user gets it)."""
    key = _account(hooks, "gone")
    gone = receiver.route("/gone", [Reply(410, "gone")])
    control = receiver.route("/control")
    gone_id = register_endpoint(hooks, key, gone)
    register_endpoint(hooks, key, control)
    hooks.submit(key, _job(1))

    (message,) = _wait_message(hooks, key, gone_id, "failed")
    assert [(a["status_code"], a["error_code"]) for a in message["attempts"]] == [(410, "gone")]
    assert message["next_attempt_at"] is None
    endpoint = hooks.get(key, f"/v1/webhooks/{gone_id}")
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] and "410" in endpoint["disabled_reason"]

    second = hooks.submit(key, _job(2))["id"]
    # The control endpoint's message for the second job was committed with any message for the
    # disabled one; once it arrived, the disabled endpoint provably got none.
    wait_until(
        lambda: second in _by_job(control.received()),
        timeout=WAIT_S,
        what="the second job's event at the control endpoint",
    )
    assert [m["id"] for m in deliveries(hooks, key, gone_id)] == [message["id"]]
    assert _message(hooks, key, gone_id, message["id"])["attempt_count"] == 1
    assert gone.ids() == [message["id"]]
    _assert_verified([*gone.received(), *control.received()])


def test_a_hanging_receiver_is_cut_at_the_timeout_and_retried(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """An attempt the receiver never answers ends at WEBHOOK_TIMEOUT_S as a timeout, and the
    next attempt (the receiver answers it) delivers the message."""
    key = _account(hooks, "hanging")
    route = receiver.route("/hanging", [HANG])
    endpoint_id = register_endpoint(hooks, key, route)
    hooks.submit(key, _job())

    (message,) = _wait_message(hooks, key, endpoint_id, "succeeded")
    first, second = message["attempts"]
    assert (first["outcome"], first["error_code"], first["status_code"]) == (
        "failed",
        "timeout",
        None,
    )
    timeout_ms = TIMEOUT_S * 1000
    assert timeout_ms * 0.95 <= first["latency_ms"] <= timeout_ms + 1000, first
    assert (second["outcome"], second["status_code"]) == ("succeeded", 200)
    assert route.ids() == [message["id"]] * 2
    # The first request is still held: promptq gave up on it, the receiver never answered.
    assert route.answered_count() == 1
    _assert_verified(route.received())


def test_a_redirect_is_a_failure_and_is_not_followed(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """302 to another path of the same server: the attempt fails as a redirect, the target is
    never requested, and the retry to the registered URL delivers."""
    key = _account(hooks, "redirect")
    target = receiver.route("/moved-here")
    route = receiver.route("/redirecting", [redirect(target.url)])
    endpoint_id = register_endpoint(hooks, key, route)
    hooks.submit(key, _job())

    (message,) = _wait_message(hooks, key, endpoint_id, "succeeded")
    first, second = message["attempts"]
    assert (first["outcome"], first["status_code"], first["error_code"]) == (
        "failed",
        302,
        "redirect",
    )
    assert target.url in first["error_message"]
    assert (second["outcome"], second["status_code"]) == ("succeeded", 200)
    assert target.received() == []
    assert receiver.unrouted == []
    assert route.ids() == [message["id"]] * 2


def test_ping_and_manual_retry(hooks: RunningStack, receiver: WebhookReceiver) -> None:
    """POST /test delivers a signed ping; a message that used up its schedule is sent once more
    by POST .../retry, with the same webhook-id."""
    key = _account(hooks, "ping")
    route = receiver.route("/ping", [Reply(200), *[Reply(500)] * len(SCHEDULE)])
    endpoint_id = register_endpoint(hooks, key, route)

    ping = _post(hooks, key, f"/v1/webhooks/{endpoint_id}/test", 202)
    assert ping["event_type"] == "ping"
    (arrived,) = _wait_received(route, 1)
    _assert_verified([arrived])
    assert arrived.webhook_id == ping["id"]
    assert arrived.payload["type"] == "ping"
    assert arrived.payload["data"]["webhook_id"] == endpoint_id
    wait_until(
        lambda: _message(hooks, key, endpoint_id, ping["id"])["status"] == "succeeded",
        timeout=WAIT_S,
        what="the ping to be recorded as delivered",
    )

    failing = _post(hooks, key, f"/v1/webhooks/{endpoint_id}/test", 202)["id"]
    wait_until(
        lambda: _message(hooks, key, endpoint_id, failing)["status"] == "failed",
        timeout=WAIT_S,
        what="the second ping to use up its schedule",
    )
    assert _message(hooks, key, endpoint_id, failing)["attempt_count"] == len(SCHEDULE)
    retried = _post(hooks, key, f"/v1/webhooks/{endpoint_id}/deliveries/{failing}/retry", 202)
    assert retried["id"] == failing
    wait_until(
        lambda: _message(hooks, key, endpoint_id, failing)["status"] == "succeeded",
        timeout=WAIT_S,
        what="the retried delivery",
    )
    codes = [a["status_code"] for a in _message(hooks, key, endpoint_id, failing)["attempts"]]
    assert codes == [500] * len(SCHEDULE) + [200]
    assert route.ids() == [ping["id"]] + [failing] * (len(SCHEDULE) + 1)
    _assert_verified(route.received())


def test_a_stuck_receiver_does_not_hold_up_jobs(
    hooks: RunningStack, receiver: WebhookReceiver
) -> None:
    """With the receiver holding every request, a burst of jobs (more than the webhook worker
    has slots) all reach final states while no delivery has been answered: every attempt so far
    is in progress or timed out. Released, the receiver then gets every message."""
    burst = 16
    key = _account(hooks, "stuck")
    route = receiver.route("/stuck", then=HANG)
    endpoint_id = register_endpoint(hooks, key, route)
    first = hooks.submit(key, _job(0))["id"]
    # A delivery is being held before the burst is even submitted.
    _wait_received(route, 1)
    jobs = [first, *(hooks.submit(key, _job(n))["id"] for n in range(1, burst + 1))]

    wait_until(
        lambda: all(
            hooks.get(key, f"/v1/jobs/{job_id}")["status"] in FINAL_STATUSES for job_id in jobs
        ),
        timeout=WAIT_S,
        what="the burst of jobs to finish",
    )
    snapshot = deliveries(hooks, key, endpoint_id)
    answered = route.answered_count()
    assert answered == 0, "the receiver answered a request before it was released"
    assert len(snapshot) == len(jobs)
    assert all(m["status"] in ("pending", "delivering") for m in snapshot), snapshot
    attempts = [a for m in snapshot for a in m["attempts"]]
    assert attempts, "no delivery had started"
    assert all(
        a["outcome"] == "in_progress" or (a["outcome"], a["error_code"]) == ("failed", "timeout")
        for a in attempts
    ), attempts
    assert {hooks.get(key, f"/v1/jobs/{j}")["status"] for j in jobs} == {"succeeded"}

    receiver.release()
    _wait_message(hooks, key, endpoint_id, "succeeded", count=len(jobs))
    _assert_verified(route.received())
    # Attempts ran on the webhook worker alone, never in a job worker's slot.
    assert '"webhook.attempt"' in hooks.processes["webhooks"].log_text()
    assert '"webhook.attempt"' not in hooks.processes["worker"].log_text()
