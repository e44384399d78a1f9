"""Webhook deliveries through the API on the real PostgreSQL and Redis: test pings, the
deliveries listing, retries, the callback secret, job.cancelled events, and the SSRF guard on
every route that takes a target URL. Attempts run through `deliver_webhook` itself (a plain
function call, with the arguments the API published) against a real receiver on loopback."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from shared.db import transaction
from shared.models import User, WebhookEndpoint, WebhookMessage
from shared.queueing import WEBHOOK_QUEUE
from shared.repositories.webhook_delivery_leases import claim_attempt
from shared.repositories.webhook_messages import enqueue_ping
from tests.api.job_helpers import VALID, auth, error_of, job_count
from tests.conftest import Account, Services
from tests.support.dns_server import DnsServer
from tests.support.recording_receiver import Receiver, verifies
from worker.tasks.deliver_webhook import deliver_webhook

ATTEMPT_FIELDS = {
    "number",
    "url",
    "outcome",
    "status_code",
    "latency_ms",
    "peer",
    "error_code",
    "error_message",
    "response_body",
    "started_at",
    "finished_at",
}
DELIVERY_FIELDS = {
    "id",
    "object",
    "event_type",
    "job_id",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_error",
    "created_at",
    "finished_at",
    "attempts",
}
PUBLIC_URL = "https://93.184.215.14/hook"
GRACE_S = 3600


@pytest.fixture
def configure(webhook_env: Callable[..., None]) -> Callable[..., None]:
    """Loopback receivers allowed, a jitter-free schedule (WEBHOOK_ENV); call to change more."""
    webhook_env(WEBHOOK_SECRET_ROTATION_GRACE_S=str(GRACE_S))
    return webhook_env


@pytest.fixture
def hooks(configure: Callable[..., None], client: FlaskClient) -> FlaskClient:
    return client


def published(services: Services) -> list[tuple[str, int]]:
    """The delivery tasks published since the last call, oldest first, as (id, attempts)."""
    broker = redis.Redis.from_url(services.redis_url)
    tasks: list[tuple[str, int]] = []
    while (raw := broker.rpop(WEBHOOK_QUEUE)) is not None:
        message_id, attempts = ast.literal_eval(json.loads(raw)["headers"]["argsrepr"])
        tasks.append((message_id, attempts))
    return tasks


def run_published(services: Services) -> list[tuple[str, int]]:
    """Run every published delivery task, as a webhook worker would."""
    tasks = published(services)
    for message_id, attempts in tasks:
        deliver_webhook(message_id, attempts)
    return tasks


def create_endpoint(
    client: FlaskClient, account: Account, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body = {"url": url, "event_types": events or ["job.succeeded", "job.failed", "job.cancelled"]}
    response = client.post("/v1/webhooks", json=body, headers=auth(account))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def send_ping(client: FlaskClient, account: Account, endpoint_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/webhooks/{endpoint_id}/test", headers=auth(account))
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def deliveries(
    client: FlaskClient, account: Account, endpoint_id: str, **query: str | int
) -> dict[str, Any]:
    response = client.get(
        f"/v1/webhooks/{endpoint_id}/deliveries", query_string=query, headers=auth(account)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def retry(client: FlaskClient, account: Account, endpoint_id: str, message_id: str) -> Any:
    return client.post(
        f"/v1/webhooks/{endpoint_id}/deliveries/{message_id}/retry", headers=auth(account)
    )


def stored(message_id: str) -> WebhookMessage:
    with transaction() as session:
        row = session.get(WebhookMessage, message_id)
        assert row is not None
        return row


# --- test pings and the listing -------------------------------------------------------------


def test_test_ping_is_a_pending_delivery_until_a_worker_sends_it(
    hooks: FlaskClient, alice: Account, receiver: Receiver, clean: Services
) -> None:
    endpoint = create_endpoint(hooks, alice, receiver.url, ["job.failed"])
    queued = send_ping(hooks, alice, endpoint["id"])
    assert set(queued) == DELIVERY_FIELDS
    assert queued["id"].startswith("msg_")
    assert (queued["object"], queued["event_type"], queued["job_id"]) == (
        "webhook_delivery",
        "ping",
        None,
    )
    assert (queued["status"], queued["attempt_count"], queued["attempts"]) == ("pending", 0, [])
    assert queued["next_attempt_at"] is not None and queued["finished_at"] is None

    assert run_published(clean) == [(queued["id"], 0)]
    [request] = receiver.received
    assert request.headers["webhook-id"] == queued["id"]
    event = json.loads(request.body)
    assert (event["type"], event["data"]["webhook_id"]) == ("ping", endpoint["id"])
    assert verifies(endpoint["secret"], request)

    [shown] = deliveries(hooks, alice, endpoint["id"])["data"]
    assert (shown["id"], shown["status"], shown["attempt_count"]) == (queued["id"], "succeeded", 1)
    [attempt] = shown["attempts"]
    assert set(attempt) == ATTEMPT_FIELDS
    assert (attempt["number"], attempt["outcome"], attempt["status_code"], attempt["peer"]) == (
        1,
        "succeeded",
        200,
        "127.0.0.1",
    )
    assert attempt["url"] == receiver.url and attempt["response_body"] == "ok"


def test_test_ping_reaches_a_disabled_endpoint(
    hooks: FlaskClient, alice: Account, receiver: Receiver, clean: Services
) -> None:
    """A ping is how the owner checks a receiver before enabling it again."""
    endpoint = create_endpoint(hooks, alice, receiver.url)
    path = f"/v1/webhooks/{endpoint['id']}"
    assert hooks.patch(path, json={"enabled": False}, headers=auth(alice)).status_code == 200
    message_id = send_ping(hooks, alice, endpoint["id"])["id"]
    run_published(clean)
    assert [r.headers["webhook-id"] for r in receiver.received] == [message_id]
    assert stored(message_id).status == "succeeded"


def test_deliveries_are_listed_newest_first_with_their_attempts(
    hooks: FlaskClient, alice: Account, receiver: Receiver, clean: Services
) -> None:
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    delivered = send_ping(hooks, alice, endpoint_id)["id"]
    run_published(clean)
    refused = send_ping(hooks, alice, endpoint_id)["id"]
    receiver.answer(500, body="try later")
    run_published(clean)
    waiting = send_ping(hooks, alice, endpoint_id)["id"]

    listing = deliveries(hooks, alice, endpoint_id)
    assert (listing["object"], listing["next_cursor"]) == ("list", None)
    data = listing["data"]
    assert [d["id"] for d in data] == [waiting, refused, delivered]
    assert [d["status"] for d in data] == ["pending", "pending", "succeeded"]
    assert [[a["outcome"] for a in d["attempts"]] for d in data] == [[], ["failed"], ["succeeded"]]
    failed = data[1]["attempts"][0]
    assert (failed["status_code"], failed["error_code"], failed["response_body"]) == (
        500,
        "http_status",
        "try later",
    )
    assert data[1]["last_error"] == "attempt 1: The receiver answered 500."
    # The retry is 30 s (the schedule's second wait) after the failed attempt.
    retry_at = datetime.fromisoformat(data[1]["next_attempt_at"])
    assert retry_at - datetime.fromisoformat(failed["finished_at"]) == timedelta(seconds=30)


def test_deliveries_page_through_with_a_cursor(
    hooks: FlaskClient, alice: Account, receiver: Receiver
) -> None:
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    for _ in range(3):
        send_ping(hooks, alice, endpoint_id)
    # Two messages made in one transaction share created_at: the id breaks the tie.
    with transaction() as session:
        endpoint = session.get(WebhookEndpoint, uuid.UUID(endpoint_id))
        assert endpoint is not None
        enqueue_ping(session, endpoint)
        enqueue_ping(session, endpoint)
    with transaction() as session:
        newest_first = list(
            session.scalars(
                select(WebhookMessage.id).order_by(
                    WebhookMessage.created_at.desc(), WebhookMessage.id.desc()
                )
            )
        )

    seen: list[str] = []
    sizes: list[int] = []
    query: dict[str, str | int] = {"limit": 2}
    while True:
        page = deliveries(hooks, alice, endpoint_id, **query)
        seen.extend(d["id"] for d in page["data"])
        sizes.append(len(page["data"]))
        if page["next_cursor"] is None:
            break
        query = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == newest_first
    assert sizes == [2, 2, 1]
    exact = deliveries(hooks, alice, endpoint_id, limit=5)
    assert len(exact["data"]) == 5 and exact["next_cursor"] is None


def test_deliveries_filter_by_status(
    hooks: FlaskClient,
    alice: Account,
    receiver: Receiver,
    clean: Services,
    configure: Callable[..., None],
) -> None:
    configure(WEBHOOK_SCHEDULE_S="0")
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    ok = send_ping(hooks, alice, endpoint_id)["id"]
    run_published(clean)
    receiver.answer(500)
    failed = send_ping(hooks, alice, endpoint_id)["id"]
    run_published(clean)
    pending = send_ping(hooks, alice, endpoint_id)["id"]

    def ids(status: str) -> list[str]:
        return [d["id"] for d in deliveries(hooks, alice, endpoint_id, status=status)["data"]]

    assert ids("succeeded") == [ok]
    assert ids("failed") == [failed]
    assert ids("pending") == [pending]
    assert ids("delivering") == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "status=lost",
        "cursor=not-a-cursor",
        "colour=blue",
        "limit=1&limit=2",
    ],
)
def test_bad_delivery_queries_are_422(hooks: FlaskClient, alice: Account, query: str) -> None:
    endpoint_id = create_endpoint(hooks, alice, PUBLIC_URL)["id"]
    response = hooks.get(f"/v1/webhooks/{endpoint_id}/deliveries?{query}", headers=auth(alice))
    error = error_of(response, 422, "validation_error")
    assert error["details"], "the error does not say which parameter is wrong"


# --- retry ----------------------------------------------------------------------------------


def test_retry_makes_a_new_attempt_of_the_same_message(
    hooks: FlaskClient,
    alice: Account,
    receiver: Receiver,
    clean: Services,
    configure: Callable[..., None],
) -> None:
    configure(WEBHOOK_SCHEDULE_S="0")
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    message_id = send_ping(hooks, alice, endpoint_id)["id"]
    receiver.answer(500)
    run_published(clean)
    assert stored(message_id).status == "failed"

    response = retry(hooks, alice, endpoint_id, message_id)
    assert response.status_code == 202, response.get_data(as_text=True)
    again = response.get_json()
    assert (again["id"], again["status"], again["attempt_count"]) == (message_id, "pending", 1)
    assert again["finished_at"] is None
    assert [a["outcome"] for a in again["attempts"]] == ["failed"]

    receiver.answer(200)
    assert run_published(clean) == [(message_id, 1)]
    [shown] = deliveries(hooks, alice, endpoint_id)["data"]
    assert (shown["id"], shown["status"], shown["attempt_count"]) == (message_id, "succeeded", 2)
    assert [(a["number"], a["outcome"]) for a in shown["attempts"]] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert [r.headers["webhook-id"] for r in receiver.received] == [message_id, message_id]
    assert receiver.received[0].body == receiver.received[1].body


def test_retry_while_delivering_is_409(
    hooks: FlaskClient, alice: Account, receiver: Receiver
) -> None:
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    message_id = send_ping(hooks, alice, endpoint_id)["id"]
    with transaction() as session:
        assert claim_attempt(session, message_id, 0, 30) is not None
    error = error_of(retry(hooks, alice, endpoint_id, message_id), 409, "delivery_in_progress")
    assert message_id in error["message"]
    assert (stored(message_id).status, stored(message_id).attempt_count) == ("delivering", 1)


def test_retry_on_a_disabled_endpoint_is_409_until_it_is_enabled(
    hooks: FlaskClient, alice: Account, receiver: Receiver, clean: Services
) -> None:
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    message_id = send_ping(hooks, alice, endpoint_id)["id"]
    receiver.answer(410)
    run_published(clean)
    assert stored(message_id).status == "failed"

    error = error_of(retry(hooks, alice, endpoint_id, message_id), 409, "webhook_disabled")
    assert "410" in error["message"] and "enabled" in error["message"]
    assert stored(message_id).status == "failed"
    assert published(clean) == []

    path = f"/v1/webhooks/{endpoint_id}"
    assert hooks.patch(path, json={"enabled": True}, headers=auth(alice)).status_code == 200
    assert retry(hooks, alice, endpoint_id, message_id).status_code == 202
    assert published(clean) == [(message_id, 1)]


def test_re_enabling_an_endpoint_starts_a_new_failing_run(
    hooks: FlaskClient,
    alice: Account,
    receiver: Receiver,
    clean: Services,
    configure: Callable[..., None],
) -> None:
    """An endpoint disabled after failing for longer than WEBHOOK_DISABLE_AFTER_S is fixed and
    enabled by its owner; one failed delivery after that (a receiver still starting up) must
    be retried on schedule, not disable the endpoint again at once."""
    configure(WEBHOOK_DISABLE_AFTER_S="3600")
    endpoint_id = create_endpoint(hooks, alice, receiver.url)["id"]
    with transaction() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
            .values(failing_since=func.now() - timedelta(hours=2))
        )
    receiver.answer(500)
    send_ping(hooks, alice, endpoint_id)
    run_published(clean)
    path = f"/v1/webhooks/{endpoint_id}"
    disabled = hooks.get(path, headers=auth(alice)).get_json()
    assert not disabled["enabled"] and disabled["disabled_reason"]

    enabled = hooks.patch(path, json={"enabled": True}, headers=auth(alice)).get_json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    message_id = send_ping(hooks, alice, endpoint_id)["id"]
    run_published(clean)
    after = hooks.get(path, headers=auth(alice)).get_json()
    assert after["enabled"], (
        "one failure right after re-enabling disabled the endpoint again: the failing run from "
        f"before it was disabled was kept ({after['disabled_reason']})"
    )
    assert stored(message_id).status == "pending"


def test_someone_elses_endpoint_or_an_unknown_delivery_is_404(
    hooks: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    bob = make_account("bob")
    endpoint_id = create_endpoint(hooks, alice, PUBLIC_URL)["id"]
    other_endpoint = create_endpoint(hooks, alice, PUBLIC_URL)["id"]
    message_id = send_ping(hooks, alice, endpoint_id)["id"]

    error_of(hooks.post(f"/v1/webhooks/{endpoint_id}/test", headers=auth(bob)), 404, "not_found")
    listing = hooks.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=auth(bob))
    error_of(listing, 404, "not_found")
    error_of(retry(hooks, bob, endpoint_id, message_id), 404, "not_found")
    # Alice's own endpoints, but a message that is not one of this endpoint's.
    error_of(retry(hooks, alice, endpoint_id, "msg_" + uuid.uuid4().hex), 404, "not_found")
    error_of(retry(hooks, alice, endpoint_id, "nonsense"), 404, "not_found")
    error_of(retry(hooks, alice, endpoint_id, "msg_" + "f" * 300), 404, "not_found")
    error_of(retry(hooks, alice, other_endpoint, message_id), 404, "not_found")
    error_of(retry(hooks, alice, "not-a-uuid", message_id), 404, "not_found")
    with transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookMessage)) == 1
    assert stored(message_id).status == "pending"


# --- the callback secret and callback_url deliveries ----------------------------------------


def _callback_delivery(
    client: FlaskClient, account: Account, receiver: Receiver, services: Services
) -> None:
    """Submit a job with callback_url, cancel it, and run the delivery it announced."""
    submitted = client.post(
        "/v1/jobs", json={**VALID, "callback_url": receiver.url}, headers=auth(account)
    )
    assert submitted.status_code == 202, submitted.get_data(as_text=True)
    cancelled = client.post(f"/v1/jobs/{submitted.get_json()['id']}/cancel", headers=auth(account))
    assert cancelled.status_code == 200
    assert len(run_published(services)) == 1


def test_callback_secret_signs_callbacks_and_rotation_keeps_the_old_one_for_the_grace(
    hooks: FlaskClient,
    alice: Account,
    make_account: Callable[[str], Account],
    receiver: Receiver,
    clean: Services,
) -> None:
    shown = hooks.get("/v1/callback-secret", headers=auth(alice))
    assert shown.status_code == 200
    first = shown.get_json()
    assert set(first) == {"object", "secret", "previous_secret_expires_at"}
    assert first["object"] == "callback_secret" and first["secret"].startswith("whsec_")
    assert first["previous_secret_expires_at"] is None
    bobs = hooks.get("/v1/callback-secret", headers=auth(make_account("bob"))).get_json()
    assert bobs["secret"] != first["secret"]

    _callback_delivery(hooks, alice, receiver, clean)
    assert verifies(first["secret"], receiver.received[0])

    rotated = hooks.post("/v1/callback-secret/rotate", headers=auth(alice))
    assert rotated.status_code == 200
    second = rotated.get_json()
    assert second["secret"].startswith("whsec_") and second["secret"] != first["secret"]
    expires = datetime.fromisoformat(second["previous_secret_expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(seconds=GRACE_S))) < timedelta(seconds=60)
    assert hooks.get("/v1/callback-secret", headers=auth(alice)).get_json() == second

    _callback_delivery(hooks, alice, receiver, clean)
    during = receiver.received[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verifies(second["secret"], during), "the new callback secret does not sign"
    assert verifies(first["secret"], during), "the previous secret stopped before its expiry"

    with transaction() as session:
        session.execute(
            update(User)
            .where(User.id == uuid.UUID(alice.user_id))
            .values(callback_previous_secret_expires_at=func.now() - timedelta(seconds=1))
        )
    _callback_delivery(hooks, alice, receiver, clean)
    after = receiver.received[2]
    assert verifies(second["secret"], after)
    assert not verifies(first["secret"], after), "the previous secret signs past its expiry"


def test_cancelling_a_queued_job_announces_job_cancelled(
    hooks: FlaskClient, alice: Account, receiver: Receiver, clean: Services
) -> None:
    on_cancel = create_endpoint(hooks, alice, receiver.url, ["job.cancelled"])
    on_failure = create_endpoint(hooks, alice, receiver.url, ["job.failed"])
    submitted = hooks.post("/v1/jobs", json=VALID, headers=auth(alice))
    assert submitted.status_code == 202
    job_id = submitted.get_json()["id"]
    assert deliveries(hooks, alice, on_cancel["id"])["data"] == []

    assert hooks.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice)).status_code == 200
    [announced] = deliveries(hooks, alice, on_cancel["id"])["data"]
    assert (announced["event_type"], announced["job_id"], announced["status"]) == (
        "job.cancelled",
        job_id,
        "pending",
    )
    assert deliveries(hooks, alice, on_failure["id"])["data"] == []
    again = hooks.post(f"/v1/jobs/{job_id}/cancel", headers=auth(alice))
    error_of(again, 409, "job_not_cancellable")

    assert run_published(clean) == [(announced["id"], 0)]
    [request] = receiver.received
    assert verifies(on_cancel["secret"], request)
    event = json.loads(request.body)
    assert event["type"] == "job.cancelled"
    assert event["data"]["job"] == hooks.get(f"/v1/jobs/{job_id}", headers=auth(alice)).get_json()


# --- the SSRF guard at registration ---------------------------------------------------------

REBINDING_NAME = "hooks.rebind.test"
# (url, resolve through the test DNS server): literal and numeric hosts never reach a resolver;
# localhost is judged as the system resolver (/etc/hosts) answers, as in production by default.
REFUSED = [
    ("http://127.0.0.1/x", False),
    ("http://localhost/x", False),
    ("http://10.0.0.1/x", False),
    ("http://169.254.169.254/latest/meta-data", False),
    ("http://[::1]/x", False),
    ("http://[::ffff:127.0.0.1]/x", False),
    ("http://0x7f000001/x", False),
    ("http://2130706433/x", False),
    (f"http://{REBINDING_NAME}/x", True),
]
ROUTES = ["POST /v1/webhooks", "PATCH /v1/webhooks/<id>", "POST /v1/jobs", "POST /v1/batches"]


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer({REBINDING_NAME: ["127.0.0.1"]}) as server:
        yield server


def _submit(client: FlaskClient, account: Account, route: str, url: str) -> tuple[Any, Any]:
    """Send `url` as the target of `route`; returns the answer and a check that a refused
    request changed nothing."""
    headers = auth(account)
    if route == "PATCH /v1/webhooks/<id>":
        endpoint_id = create_endpoint(client, account, PUBLIC_URL)["id"]
        path = f"/v1/webhooks/{endpoint_id}"

        def url_kept() -> None:
            assert client.get(path, headers=headers).get_json()["url"] == PUBLIC_URL

        return client.patch(path, json={"url": url}, headers=headers), url_kept
    endpoints, jobs = endpoint_count(account), job_count(account)

    def nothing_written() -> None:
        assert (endpoint_count(account), job_count(account)) == (endpoints, jobs)

    if route == "POST /v1/webhooks":
        body = {"url": url, "event_types": ["job.failed"]}
        return client.post("/v1/webhooks", json=body, headers=headers), nothing_written
    if route == "POST /v1/jobs":
        body = {**VALID, "callback_url": url}
        return client.post("/v1/jobs", json=body, headers=headers), nothing_written
    batch = [{**VALID, "custom_id": "plain"}, {**VALID, "custom_id": "hooked", "callback_url": url}]
    return client.post("/v1/batches", json={"jobs": batch}, headers=headers), nothing_written


def endpoint_count(account: Account) -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == uuid.UUID(account.user_id))
        )


def _refusal_problem(route: str, url: str, response: Any, via_test_dns: bool) -> str | None:
    """What is wrong with `response` as a refusal of `url` on `route`; None if nothing."""
    if not 400 <= response.status_code < 500 or not response.is_json:
        return f"{route} answered {response.status_code} to {url}"
    error = response.get_json()["error"]
    message = error["message"]
    if error["code"] not in {"url_not_allowed", "validation_error"}:
        return f"{route}: unexpected error code {error['code']!r} for {url}"
    # Actionable: it says what is wrong with this URL and what would be accepted.
    if error["code"] == "url_not_allowed" and "public addresses" not in message:
        return f"{route}: {message!r} does not say what is allowed"
    if error["code"] == "validation_error" and "not accepted" not in message:
        return f"{route}: {message!r} does not say what is wrong"
    if route == "POST /v1/batches" and "jobs.1.callback_url" not in message:
        return f"{route}: {message!r} does not name the job"
    if via_test_dns and "127.0.0.1" not in message:
        return f"{route}: {message!r} does not name the address the host resolves to"
    return None


@pytest.mark.parametrize(("url", "via_test_dns"), REFUSED, ids=[u for u, _ in REFUSED])
def test_internal_targets_are_refused_on_every_route(
    hooks: FlaskClient,
    alice: Account,
    configure: Callable[..., None],
    dns: DnsServer,
    url: str,
    via_test_dns: bool,
) -> None:
    configure(WEBHOOK_ALLOWED_NETWORKS="")
    if via_test_dns:
        configure(WEBHOOK_NAMESERVER=dns.address)
    problems: list[str | None] = []
    for route in ROUTES:
        response, unchanged = _submit(hooks, alice, route, url)
        problems.append(_refusal_problem(route, url, response, via_test_dns))
        unchanged()
    assert [p for p in problems if p] == []
    if via_test_dns:
        assert (REBINDING_NAME, "A") in dns.queries, "the configured nameserver was not asked"


def test_loopback_is_accepted_where_allowed(hooks: FlaskClient, alice: Account) -> None:
    """WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 (as `make dev` sets it) lets loopback through."""
    for route in ROUTES:
        response, _ = _submit(hooks, alice, route, "http://127.0.0.1:9/x")
        assert response.status_code in {200, 201, 202}, (route, response.get_data(as_text=True))
