"""Webhook messages on the real PostgreSQL: which events make messages, one attempt per claim,
the retry schedule, endpoint health (410, a long failing run, success), leases, the dispatcher,
and signing with rotated secrets. Deliveries go through `deliver_webhook` itself (called as a
plain function) to a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from api import create_app
from devstack.processes import wait_until
from shared.db import get_engine, get_session_factory, transaction
from shared.models import (
    Job,
    JobStatus,
    User,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from shared.repositories.audit_log import CLI
from shared.repositories.jobs import insert_held_job
from shared.repositories.users import rotate_callback_secret
from shared.repositories.webhook_attempt_results import AttemptReport, record_attempt_result
from shared.repositories.webhook_delivery_leases import (
    ClaimedAttempt,
    claim_attempt,
    expire_deliveries,
)
from shared.repositories.webhook_dispatch import due_messages
from shared.repositories.webhook_endpoints import create_endpoint, rotate_secret
from shared.repositories.webhook_messages import Dispatch, enqueue_job_events, enqueue_ping
from shared.settings import get_settings
from shared.webhook_retry_policy import RetryPolicy
from tests.conftest import Account
from tests.support.jobs import succeeded_result
from tests.support.recording_receiver import Receiver, verifies
from worker.tasks.deliver_webhook import deliver_webhook

ALL_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


@pytest.fixture
def configure(webhook_env: Callable[..., None]) -> Callable[..., None]:
    return webhook_env


@pytest.fixture
def owner(configure: Callable[..., None], make_account: Callable[[str], Account]) -> uuid.UUID:
    return uuid.UUID(make_account("alice").user_id)


def endpoint_for(
    user_id: uuid.UUID, url: str, events: Iterable[str] = ALL_EVENTS, enabled: bool = True
) -> uuid.UUID:
    with transaction() as session:
        endpoint = create_endpoint(
            session, user_id, url=url, event_types=list(events), description=None, enabled=enabled
        )
        return endpoint.id


def job_in(user_id: uuid.UUID, status: JobStatus, callback_url: str | None = None) -> uuid.UUID:
    """A job already in `status`, with a result, usage and cost when it succeeded."""
    with transaction() as session:
        job = insert_held_job(
            session,
            dict(
                user_id=user_id,
                model="gpt-4o-mini",
                priority="normal",
                request={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16},
                fallbacks=["claude-3-5-haiku-latest"],
                meta={"order": "A-17", "nested": {"ok": True}},
                callback_url=callback_url,
                max_cost_usd=Decimal("0.25"),
            ),
            Decimal(0),
        )
        assert job is not None
        changes: dict[str, object] = {"status": status}
        if status != JobStatus.QUEUED:
            changes |= {"started_at": func.now(), "finished_at": func.now()}
        if status == JobStatus.SUCCEEDED:
            changes |= {
                "result": succeeded_result("Hello ✓"),
                "input_tokens": 12,
                "output_tokens": 5,
                "cost_usd": Decimal("0.0000123"),
            }
        elif status == JobStatus.FAILED:
            changes["error"] = {"code": "provider_error", "message": "upstream 500"}
        session.execute(update(Job).where(Job.id == job.id).values(**changes))
        return job.id


def announce(job_ids: list[uuid.UUID]) -> list[Dispatch]:
    with transaction() as session:
        return enqueue_job_events(session, job_ids, get_settings().public_base_url)


def ping(endpoint_id: uuid.UUID) -> str:
    with transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        message_id, attempts = enqueue_ping(session, endpoint)
    assert attempts == 0
    return message_id


def message(message_id: str) -> WebhookMessage:
    with transaction() as session:
        row = session.get(WebhookMessage, message_id)
        assert row is not None
        return row


def attempts_of(message_id: str) -> list[WebhookAttempt]:
    with transaction() as session:
        return list(
            session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.message_id == message_id)
                .order_by(WebhookAttempt.number)
            )
        )


def endpoint_row(endpoint_id: uuid.UUID) -> WebhookEndpoint:
    with transaction() as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def set_endpoint(endpoint_id: uuid.UUID, **values: object) -> None:
    with transaction() as session:
        session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
        )


def set_message(message_id: str, **values: object) -> None:
    with transaction() as session:
        session.execute(
            update(WebhookMessage).where(WebhookMessage.id == message_id).values(**values)
        )


def ago(seconds: float) -> Any:
    """The database clock `seconds` ago (negative: in the future), as a SQL expression."""
    return func.now() - timedelta(seconds=seconds)


# --- which messages exist ------------------------------------------------------------------


def test_messages_for_enabled_subscribed_endpoints_and_the_callback_url(
    owner: uuid.UUID, make_account: Callable[[str], Account]
) -> None:
    """One message per enabled endpoint of the owner subscribed to the event, plus one for the
    job's callback_url; none for other events, disabled endpoints, other users or unfinished
    jobs."""
    url = "http://127.0.0.1:9/hook"
    callback = "http://127.0.0.1:9/callback"
    bob = uuid.UUID(make_account("bob").user_id)
    on_success = endpoint_for(owner, url, ["job.succeeded"])
    on_failure = endpoint_for(owner, url, ["job.failed", "job.cancelled"])
    endpoint_for(owner, url, ["job.succeeded"], enabled=False)
    endpoint_for(bob, url, ALL_EVENTS)
    succeeded = job_in(owner, JobStatus.SUCCEEDED, callback_url=callback)
    failed = job_in(owner, JobStatus.FAILED)
    queued = job_in(owner, JobStatus.QUEUED, callback_url=callback)
    cancelled_quietly = job_in(bob, JobStatus.CANCELLED)  # bob's endpoint: not alice's events

    assert announce([]) == []
    dispatches = announce([succeeded, failed, queued])

    with transaction() as session:
        rows = list(session.scalars(select(WebhookMessage)))
    assert {(m.job_id, m.endpoint_id, m.url, m.event_type) for m in rows} == {
        (succeeded, on_success, None, "job.succeeded"),
        (succeeded, None, callback, "job.succeeded"),
        (failed, on_failure, None, "job.failed"),
    }
    assert sorted(dispatches) == sorted((m.id, 0) for m in rows)
    assert all(
        (m.user_id, m.status, m.attempt_count, m.finished_at) == (owner, "pending", 0, None)
        and m.next_attempt_at is not None
        and m.id.startswith("msg_")
        for m in rows
    )
    # Every target of one event gets the very same bytes.
    assert len({m.body for m in rows if m.job_id == succeeded}) == 1
    assert len({m.id for m in rows}) == 3
    assert announce([cancelled_quietly]) != [], "bob's own endpoint hears bob's job"


def test_event_payload_is_the_job_as_the_api_shows_it(
    owner: uuid.UUID, make_account: Callable[[str], Account]
) -> None:
    """data.job is exactly what GET /v1/jobs/<id> answers (PUBLIC_BASE_URL is the test
    client's host, so status_url agrees too)."""
    account = make_account("carol")
    user_id = uuid.UUID(account.user_id)
    endpoint_for(user_id, "http://127.0.0.1:9/hook")
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        job_id = job_in(user_id, status)
        [(message_id, _)] = announce([job_id])
        event = json.loads(message(message_id).body)
        shown = (
            create_app()
            .test_client()
            .get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {account.key}"})
        )
        assert shown.status_code == 200
        assert set(event) == {"type", "timestamp", "data"}
        assert event["type"] == f"job.{status}"
        assert event["data"] == {"job": shown.get_json()}
        assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None


# --- claiming -------------------------------------------------------------------------------


def test_claim_refuses_stale_and_duplicate_attempt_counts(owner: uuid.UUID) -> None:
    """A task names the attempt count it expects: only that generation can start, once."""
    endpoint_id = endpoint_for(owner, "http://127.0.0.1:9/hook")
    message_id = ping(endpoint_id)
    with transaction() as session:
        assert claim_attempt(session, message_id, 1, 30) is None, "a task from the future"
    with transaction() as session:
        claim = claim_attempt(session, message_id, 0, 30)
    assert claim is not None
    assert (claim.message_id, claim.number, claim.endpoint_id) == (message_id, 1, endpoint_id)
    with transaction() as session:
        assert claim_attempt(session, message_id, 0, 30) is None, "a duplicate task"
    # Attempt 1 failed and the message waits for attempt 2: attempt 1's task is now stale.
    with transaction() as session:
        failed = AttemptReport(succeeded=False, latency_ms=1, error_message="refused")
        policy = RetryPolicy(schedule_s=[0, 0, 0], jitter=0, disable_after_s=3600)
        assert record_attempt_result(session, claim, failed, policy) == "pending"
    with transaction() as session:
        assert claim_attempt(session, message_id, 0, 30) is None, "a stale task"
    with transaction() as session:
        second = claim_attempt(session, message_id, 1, 30)
    assert second is not None and second.number == 2
    assert [a.number for a in attempts_of(message_id)] == [1, 2]


def _waiting_on_a_lock() -> bool:
    with get_engine().connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def test_concurrent_claims_start_exactly_one_attempt(owner: uuid.UUID) -> None:
    """Two tasks for the same generation at the same moment: the second waits on the first's
    row lock, then finds the generation taken."""
    message_id = ping(endpoint_for(owner, "http://127.0.0.1:9/hook"))
    outcomes: list[ClaimedAttempt | None] = []

    def second_claim() -> None:
        with transaction() as session:
            outcomes.append(claim_attempt(session, message_id, 0, 30))

    first = get_session_factory()()
    try:
        first_claim = claim_attempt(first, message_id, 0, 30)
        racer = threading.Thread(target=second_claim, daemon=True)
        racer.start()
        wait_until(_waiting_on_a_lock, timeout=10, interval=0.02, what="the second claim to block")
        first.commit()
    finally:
        first.close()
    racer.join(timeout=10)
    assert not racer.is_alive()
    assert first_claim is not None and first_claim.number == 1
    assert outcomes == [None], "the second claim also started attempt 1"
    assert [a.number for a in attempts_of(message_id)] == [1]
    assert message(message_id).attempt_count == 1


# --- one attempt's outcome ------------------------------------------------------------------


def test_success_is_signed_and_recorded(owner: uuid.UUID, receiver: Receiver) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    message_id = ping(endpoint_id)
    receiver.answer(204)
    deliver_webhook(message_id, 0)

    [request] = receiver.received
    assert request.path == "/hook"
    assert request.body == message(message_id).body.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert verifies(endpoint_row(endpoint_id).secret, request)
    done = message(message_id)
    assert (done.status, done.attempt_count, done.last_error) == ("succeeded", 1, None)
    assert done.finished_at is not None and done.next_attempt_at is None
    [attempt] = attempts_of(message_id)
    assert (attempt.outcome, attempt.status_code, attempt.peer, attempt.url) == (
        "succeeded",
        204,
        "127.0.0.1",
        receiver.url,
    )
    assert attempt.finished_at is not None and attempt.latency_ms is not None


def test_server_error_schedules_the_next_attempt_by_the_schedule(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    message_id = ping(endpoint_id)
    receiver.answer(500, body="boom")
    deliver_webhook(message_id, 0)

    waiting = message(message_id)
    assert (waiting.status, waiting.attempt_count) == ("pending", 1)
    assert waiting.last_error == "attempt 1: The receiver answered 500."
    [attempt] = attempts_of(message_id)
    assert (attempt.outcome, attempt.status_code, attempt.error_code, attempt.response_body) == (
        "failed",
        500,
        "http_status",
        "boom",
    )
    # The second wait of the schedule (30 s), exactly: jitter is 0 and both are the same
    # transaction's clock.
    assert attempt.finished_at is not None and waiting.next_attempt_at is not None
    assert waiting.next_attempt_at - attempt.finished_at == timedelta(seconds=30)
    assert endpoint_row(endpoint_id).failing_since is not None, "a failing run started"
    assert endpoint_row(endpoint_id).enabled

    # The third attempt waits the schedule's third step; after it the schedule is spent.
    deliver_webhook(message_id, 1)
    waiting = message(message_id)
    second = attempts_of(message_id)[1]
    assert waiting.next_attempt_at is not None and second.finished_at is not None
    assert waiting.next_attempt_at - second.finished_at == timedelta(seconds=120)
    deliver_webhook(message_id, 2)
    assert (message(message_id).status, message(message_id).attempt_count) == ("failed", 3)


@pytest.mark.parametrize(
    ("retry_after", "wait_s"),
    [("5", 30), ("90", 90), ("1000", 120)],
    ids=["shorter-than-the-step", "longer-than-the-step", "beyond-the-longest-wait"],
)
def test_retry_after_is_honoured_up_to_the_longest_wait(
    owner: uuid.UUID, receiver: Receiver, retry_after: str, wait_s: int
) -> None:
    message_id = ping(endpoint_for(owner, receiver.url))
    receiver.answer(503, headers={"Retry-After": retry_after})
    deliver_webhook(message_id, 0)
    waiting = message(message_id)
    [attempt] = attempts_of(message_id)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at is not None and attempt.finished_at is not None
    assert waiting.next_attempt_at - attempt.finished_at == timedelta(seconds=wait_s)


def test_exhausted_schedule_fails_the_message_with_its_last_error(
    owner: uuid.UUID, receiver: Receiver, configure: Callable[..., None]
) -> None:
    configure(WEBHOOK_SCHEDULE_S="0,0")
    message_id = ping(endpoint_for(owner, receiver.url))
    receiver.answer(500)
    deliver_webhook(message_id, 0)
    assert message(message_id).status == "pending"
    deliver_webhook(message_id, 1)

    failed = message(message_id)
    assert (failed.status, failed.attempt_count) == ("failed", 2)
    assert failed.last_error == "attempt 2: The receiver answered 500."
    assert failed.finished_at is not None and failed.next_attempt_at is None
    # Late or duplicate tasks change nothing.
    deliver_webhook(message_id, 1)
    deliver_webhook(message_id, 2)
    assert [(a.number, a.outcome) for a in attempts_of(message_id)] == [
        (1, "failed"),
        (2, "failed"),
    ]
    first, second = receiver.received
    # A retry is the same message: same webhook-id, same bytes.
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message_id
    assert first.body == second.body


def test_gone_disables_the_endpoint_and_fails_the_message_at_once(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    message_id = ping(endpoint_id)
    receiver.answer(410)
    deliver_webhook(message_id, 0)

    endpoint = endpoint_row(endpoint_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason and "410" in endpoint.disabled_reason
    failed = message(message_id)
    assert (failed.status, failed.attempt_count) == ("failed", 1), "the schedule had room"
    assert failed.last_error and "410" in failed.last_error
    [attempt] = attempts_of(message_id)
    assert (attempt.status_code, attempt.error_code) == (410, "gone")
    deliver_webhook(message_id, 1)
    assert len(receiver.received) == 1


def test_redirect_is_a_failure_and_is_not_followed(owner: uuid.UUID, receiver: Receiver) -> None:
    message_id = ping(endpoint_for(owner, receiver.url))
    receiver.answer(302, headers={"Location": f"{receiver.base}/redirected"})
    deliver_webhook(message_id, 0)

    [attempt] = attempts_of(message_id)
    assert (attempt.outcome, attempt.status_code, attempt.error_code) == ("failed", 302, "redirect")
    assert attempt.error_message and f"{receiver.base}/redirected" in attempt.error_message
    assert [r.path for r in receiver.received] == ["/hook"], "the redirect was followed"
    assert message(message_id).status == "pending"


def test_failing_longer_than_allowed_disables_the_endpoint(
    owner: uuid.UUID, receiver: Receiver, configure: Callable[..., None]
) -> None:
    configure(WEBHOOK_DISABLE_AFTER_S="3600")
    endpoint_id = endpoint_for(owner, receiver.url)
    receiver.answer(500)

    # Failing for half the allowance: still enabled, the message waits for its retry.
    set_endpoint(endpoint_id, failing_since=ago(1800))
    recent = ping(endpoint_id)
    deliver_webhook(recent, 0)
    assert endpoint_row(endpoint_id).enabled
    assert message(recent).status == "pending"

    set_endpoint(endpoint_id, failing_since=ago(7200))
    late = ping(endpoint_id)
    deliver_webhook(late, 0)
    endpoint = endpoint_row(endpoint_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason and "Every delivery failed since" in endpoint.disabled_reason
    assert "500" in endpoint.disabled_reason, "the reason names the last error"
    failed = message(late)
    assert (failed.status, failed.attempt_count) == ("failed", 1)


def test_success_clears_the_failing_run(owner: uuid.UUID, receiver: Receiver) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    set_endpoint(endpoint_id, failing_since=ago(600))
    message_id = ping(endpoint_id)
    deliver_webhook(message_id, 0)
    assert message(message_id).status == "succeeded"
    assert endpoint_row(endpoint_id).failing_since is None


# --- disabled endpoints ---------------------------------------------------------------------


def test_disabled_endpoint_fails_its_message_without_an_attempt(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    [(message_id, attempts)] = announce([job_in(owner, JobStatus.SUCCEEDED)])
    set_endpoint(endpoint_id, enabled=False)
    deliver_webhook(message_id, attempts)

    failed = message(message_id)
    assert (failed.status, failed.attempt_count) == ("failed", 0)
    assert failed.last_error and "disabled" in failed.last_error
    assert failed.finished_at is not None and failed.lease_expires_at is None
    assert attempts_of(message_id) == []
    assert receiver.received == []


def test_ping_to_a_disabled_endpoint_is_still_sent(owner: uuid.UUID, receiver: Receiver) -> None:
    endpoint_id = endpoint_for(owner, receiver.url, enabled=False)
    message_id = ping(endpoint_id)
    deliver_webhook(message_id, 0)
    assert message(message_id).status == "succeeded"
    [request] = receiver.received
    assert json.loads(request.body)["type"] == "ping"


# --- leases and the dispatcher --------------------------------------------------------------


def test_expired_lease_interrupts_the_attempt_and_hands_the_message_back(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    vanished, busy = ping(endpoint_id), ping(endpoint_id)
    with transaction() as session:
        lost_claim = claim_attempt(session, vanished, 0, 30)
        assert claim_attempt(session, busy, 0, 30) is not None
    assert lost_claim is not None
    set_message(vanished, lease_expires_at=ago(1))

    with transaction() as session:
        assert expire_deliveries(session) == 1
    handed_back = message(vanished)
    assert (handed_back.status, handed_back.attempt_count) == ("pending", 1)
    assert handed_back.lease_expires_at is None and handed_back.dispatched_at is None
    assert handed_back.next_attempt_at is not None
    [interrupted] = attempts_of(vanished)
    assert (interrupted.outcome, interrupted.error_code) == ("interrupted", "worker_lost")
    assert interrupted.finished_at is not None
    assert message(busy).status == "delivering", "a live lease was taken away"
    with transaction() as session:
        assert expire_deliveries(session) == 0

    # The vanished worker reporting late cannot move the message it no longer owns.
    with transaction() as session:
        late = AttemptReport(succeeded=True, latency_ms=1, status_code=200)
        record_attempt_result(session, lost_claim, late, RetryPolicy([0, 30], 0, 3600))
    assert (message(vanished).status, message(vanished).attempt_count) == ("pending", 1)

    deliver_webhook(vanished, 1)
    assert [r.headers["webhook-id"] for r in receiver.received] == [vanished]
    assert message(vanished).status == "succeeded"
    assert [a.number for a in attempts_of(vanished)] == [1, 2]


def test_due_messages_publishes_once_per_redispatch_window(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    message_id = ping(endpoint_id)

    def due() -> list[Dispatch]:
        with transaction() as session:
            return due_messages(session, 60, 100, orphan_grace_s=3600, oldest_waiting=None)

    assert due() == [], "a message is published when it is made"
    set_message(message_id, dispatched_at=ago(59))
    assert due() == []
    set_message(message_id, dispatched_at=ago(61))
    assert due() == [(message_id, 0)]
    assert due() == [], "published twice within the window"
    set_message(message_id, dispatched_at=ago(61))
    assert due() == [(message_id, 0)]

    # After a failed attempt it is due when its retry is, and then published at once.
    receiver.answer(500)
    deliver_webhook(message_id, 0)
    assert due() == [], "published before its retry time"
    set_message(message_id, next_attempt_at=ago(1))
    assert due() == [(message_id, 1)]
    assert due() == []

    # A message being delivered is never due, however old its publish.
    with transaction() as session:
        assert claim_attempt(session, message_id, 1, 30) is not None
    set_message(message_id, dispatched_at=ago(3600), next_attempt_at=ago(3600))
    assert due() == []


def _due(session: Session, oldest_waiting: str | None = None) -> list[Dispatch]:
    return due_messages(session, 300, 100, orphan_grace_s=30, oldest_waiting=oldest_waiting)


def test_a_delivery_taken_from_the_queue_and_never_started_is_published_again(
    owner: uuid.UUID,
) -> None:
    """Past the grace and older than the oldest delivery still waiting (or with the queue
    empty), a pending message's publish was taken by a worker that died before claiming it:
    it is published again long before the redispatch window."""
    endpoint_id = endpoint_for(owner, "http://127.0.0.1:9/hook")
    taken, waiting = ping(endpoint_id), ping(endpoint_id)
    set_message(taken, dispatched_at=ago(40))
    set_message(waiting, dispatched_at=ago(50))
    with transaction() as session:
        # Behind an older delivery still waiting in the queue: it waits too.
        assert _due(session, oldest_waiting=waiting) == []
        # The oldest waiting delivery cannot be read, or is being delivered: trust them all.
        assert _due(session, oldest_waiting="") == []
    set_message(waiting, dispatched_at=ago(1))
    with transaction() as session:
        assert _due(session, oldest_waiting=waiting) == [(taken, 0)]
    set_message(taken, dispatched_at=ago(20))
    with transaction() as session:
        # Within the grace a live worker may still be about to start it.
        assert _due(session) == []
    set_message(taken, dispatched_at=ago(31))
    with transaction() as session:
        assert _due(session) == [(taken, 0)], "an empty queue leaves it nobody to bring it"
        assert _due(session) == []


def test_two_dispatchers_never_take_the_same_message(owner: uuid.UUID) -> None:
    """While one dispatcher's transaction holds the messages it took, another skips them
    instead of waiting, and after its commit they are no longer due."""
    endpoint_id = endpoint_for(owner, "http://127.0.0.1:9/hook")
    taken = {ping(endpoint_id), ping(endpoint_id)}
    for message_id in taken:
        set_message(message_id, dispatched_at=None)
    first = get_session_factory()()
    try:
        assert {m for m, _ in _due(first)} == taken
        with transaction() as session:
            assert _due(session) == [], "a held message was taken twice"
        first.commit()
    finally:
        first.close()
    with transaction() as session:
        assert _due(session) == []


# --- secrets --------------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_grace_window(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_id = endpoint_for(owner, receiver.url)
    previous = endpoint_row(endpoint_id).secret
    with transaction() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        current = rotate_secret(session, endpoint, 3600, actor=CLI).secret
    assert current != previous

    deliver_webhook(ping(endpoint_id), 0)
    [during] = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verifies(current, during), "the new secret's signature is missing"
    assert verifies(previous, during), "the previous secret stopped signing early"

    set_endpoint(endpoint_id, previous_secret_expires_at=ago(1))
    deliver_webhook(ping(endpoint_id), 0)
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verifies(current, after)
    assert not verifies(previous, after), "the expired secret still signs"


def test_callback_url_deliveries_are_signed_with_the_callback_secret(
    owner: uuid.UUID, receiver: Receiver
) -> None:
    endpoint_secret = endpoint_row(endpoint_for(owner, "http://127.0.0.1:9/elsewhere")).secret
    with transaction() as session:
        user = session.get(User, owner)
        assert user is not None
        previous = user.callback_secret
    [(first, _)] = [
        d
        for d in announce([job_in(owner, JobStatus.FAILED, callback_url=receiver.url)])
        if message(d[0]).endpoint_id is None
    ]
    deliver_webhook(first, 0)
    [before] = receiver.received
    assert verifies(previous, before)
    assert not verifies(endpoint_secret, before)

    with transaction() as session:
        user = session.get(User, owner)
        assert user is not None
        current = rotate_callback_secret(session, user, 3600, actor=CLI).callback_secret
    [(second, _)] = [
        d
        for d in announce([job_in(owner, JobStatus.SUCCEEDED, callback_url=receiver.url)])
        if message(d[0]).endpoint_id is None
    ]
    deliver_webhook(second, 0)
    during = receiver.received[1]
    assert during.headers["webhook-id"] == second
    assert verifies(current, during) and verifies(previous, during)
    assert message(second).status == "succeeded"
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]
