"""Budget alerts on the real PostgreSQL: a charge that crosses a fraction of a daily or monthly
budget records it in the statement that bills it, exactly once per period and fraction however
many charges race; the `budget.threshold` message reaches subscribed endpoints signed like every
event; and a charge costs no statement more for it."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pydantic
import pytest
from sqlalchemy import event, select, update

from shared.db import get_engine, one_statement, transaction
from shared.models import BudgetAlert, Job, JobStatus, SpendCounter, User, WebhookMessage
from shared.repositories.attempts import AttemptRecord
from shared.repositories.budget_alerts import Alert
from shared.repositories.budgets import settle
from shared.repositories.final_write import finish_unwatched
from shared.repositories.job_leases import Claim, Outcome, claim_job, finish_job
from shared.repositories.webhook_endpoints import create_endpoint
from shared.repositories.webhook_messages import enqueue_budget_alerts
from shared.settings import Settings
from tests.conftest import Account
from tests.support.jobs import queued_job, succeeded_result
from tests.support.recording_receiver import Receiver, verifies
from worker.tasks.deliver_webhook import deliver_webhook

FRACTIONS = [Decimal("0.8"), Decimal("1.0")]
CHARGE = Decimal("0.05")


def _budgets(user_id: uuid.UUID, daily: str | None, monthly: str | None) -> None:
    with transaction() as session:
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                daily_budget_usd=None if daily is None else Decimal(daily),
                monthly_budget_usd=None if monthly is None else Decimal(monthly),
            )
        )


def _alerts(user_id: uuid.UUID) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    with transaction() as session:
        rows = session.scalars(
            select(BudgetAlert)
            .where(BudgetAlert.user_id == user_id)
            .order_by(BudgetAlert.period, BudgetAlert.fraction)
        ).all()
        return [(a.period, a.fraction, a.budget_usd, a.spent_usd) for a in rows]


def _charge(user_id: uuid.UUID, cost: Decimal = CHARGE) -> list[Alert]:
    with transaction() as session:
        return settle(session, user_id, released=Decimal(0), cost=cost, alert_fractions=FRACTIONS)


def _period_starts(user_id: uuid.UUID) -> tuple[date, date]:
    with transaction() as session:
        counter = session.get(SpendCounter, user_id)
        assert counter is not None
        return counter.day, counter.month


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL statements this process sends meanwhile."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)


def test_racing_charges_alert_once_per_period_and_fraction(
    make_account: Callable[[str], Account],
) -> None:
    """20 threads charge $0.05 each at once against a $1 day and a $1.25 month: exactly the three
    fractions crossed are recorded, each by exactly one of the charges, at the spend it crossed."""
    user_id = uuid.UUID(make_account("racer").user_id)
    _budgets(user_id, daily="1.00", monthly="1.25")
    # The day before and after the charges: a run across midnight has the counter's day in it.
    days = {datetime.now(UTC).date()}
    start = threading.Barrier(20)
    returned: list[Alert] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def charge() -> None:
        try:
            start.wait(timeout=10)
            alerts = _charge(user_id)
            with lock:
                returned.extend(alerts)
        except BaseException as exc:  # reported below: a thread's assert is otherwise lost
            failures.append(exc)

    threads = [threading.Thread(target=charge) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures

    day, month = _period_starts(user_id)
    assert _alerts(user_id) == [
        ("daily", Decimal("0.8"), Decimal("1"), Decimal("0.8")),
        ("daily", Decimal("1"), Decimal("1"), Decimal("1")),
        ("monthly", Decimal("0.8"), Decimal("1.25"), Decimal("1")),
    ]
    # Each recorded alert was returned (to be announced) by exactly one charge.
    assert sorted((a.period, a.fraction, a.period_start) for a in returned) == [
        ("daily", Decimal("0.8"), day),
        ("daily", Decimal("1"), day),
        ("monthly", Decimal("0.8"), month),
    ]
    days.add(datetime.now(UTC).date())
    assert day in days and month == day.replace(day=1)


def test_a_fraction_crossed_again_in_the_same_period_is_not_alerted_again(
    make_account: Callable[[str], Account],
) -> None:
    """After a budget is raised mid-period, the spend crosses 80% of the new budget: the
    period's 80% alert was already sent, so nothing new is recorded or returned."""
    user_id = uuid.UUID(make_account("raised").user_id)
    _budgets(user_id, daily="1.00", monthly=None)
    assert [a.fraction for a in _charge(user_id, Decimal("0.85"))] == [Decimal("0.8")]
    _budgets(user_id, daily="2.00", monthly=None)
    assert _charge(user_id, Decimal("0.80")) == []  # 0.85 -> 1.65, past 80% of $2 again
    assert [a.fraction for a in _charge(user_id, Decimal("0.35"))] == [Decimal("1")]
    assert [(p, f) for p, f, _, _ in _alerts(user_id)] == [
        ("daily", Decimal("0.8")),
        ("daily", Decimal("1")),
    ]


def test_no_budget_no_alert_and_no_statement_more(
    make_account: Callable[[str], Account],
) -> None:
    """A charge is one statement with or without a budget and alerts; a user without a budget
    is never alerted, and announcing no alert sends nothing."""
    free = uuid.UUID(make_account("free").user_id)
    bounded = uuid.UUID(make_account("bounded").user_id)
    _budgets(bounded, daily="100", monthly="100")
    for user_id in (free, bounded):
        with _statements() as sent, transaction() as session:
            alerts = settle(
                session, user_id, released=Decimal(0), cost=CHARGE, alert_fractions=FRACTIONS
            )
            assert enqueue_budget_alerts(session, alerts) == []
        assert alerts == []
        # The charge, and the transaction's COMMIT (psycopg's BEGIN is not a statement).
        assert len([s for s in sent if s.strip().upper() != "COMMIT"]) == 1, sent
    big = Decimal("5000")
    assert _charge(free, big) == []
    assert _alerts(free) == []


def _claimed(account: Account) -> Claim:
    job_id = queued_job(account.user_id, Decimal("0.9"), dispatched=True)
    with one_statement() as session:
        claim = claim_job(session, job_id, lease_s=60)
    assert claim is not None
    return claim


def _record(cost: Decimal) -> AttemptRecord:
    now = datetime.now(UTC)
    return AttemptRecord(
        provider="openai",
        model="gpt-4o-mini",
        outcome="succeeded",
        error_code=None,
        error_message=None,
        latency_ms=5,
        input_tokens=3,
        output_tokens=4,
        cost_usd=cost,
        started_at=now,
        finished_at=now,
    )


def _outcome(cost: Decimal) -> Outcome:
    return Outcome(
        status=JobStatus.SUCCEEDED,
        result=succeeded_result("ok"),
        error=None,
        input_tokens=3,
        output_tokens=4,
        cost_usd=cost,
    )


def test_the_one_statement_final_write_records_the_crossing(
    make_account: Callable[[str], Account],
) -> None:
    """A job nobody watches finishes in one statement, and that statement records the crossing
    (nobody is told: no endpoint is enabled)."""
    account = make_account("quiet")
    user_id = uuid.UUID(account.user_id)
    _budgets(user_id, daily="1.00", monthly=None)
    claim = _claimed(account)
    assert claim.watched is False
    with _statements() as sent, one_statement() as session:
        assert finish_unwatched(
            session, claim, _outcome(Decimal("0.9")), _record(Decimal("0.9")), FRACTIONS
        )
    assert len(sent) == 1
    assert _alerts(user_id) == [("daily", Decimal("0.8"), Decimal("1"), Decimal("0.9"))]
    with transaction() as session:
        job = session.get(Job, claim.job_id)
        assert job is not None and job.status == JobStatus.SUCCEEDED


@pytest.fixture
def subscribed(
    webhook_env: Callable[..., None], make_account: Callable[[str], Account], receiver: Receiver
) -> tuple[Account, str]:
    """A user with a $1 daily budget, an endpoint subscribed to budget.threshold (its secret
    returned) and one subscribed to job events only."""
    account = make_account("watched")
    user_id = uuid.UUID(account.user_id)
    _budgets(user_id, daily="1.00", monthly=None)
    with transaction() as session:
        budget_endpoint = create_endpoint(
            session,
            user_id,
            url=receiver.url,
            event_types=["budget.threshold"],
            description=None,
            enabled=True,
        )
        create_endpoint(
            session,
            user_id,
            url=f"{receiver.base}/jobs-only",
            event_types=["job.succeeded"],
            description=None,
            enabled=True,
        )
        return account, budget_endpoint.secret


def test_the_alert_is_delivered_signed_to_subscribed_endpoints(
    subscribed: tuple[Account, str], receiver: Receiver
) -> None:
    """The full final write (a webhook waits) records the 80% crossing; its budget.threshold
    message goes only to the endpoint subscribed to it, signed so that the official
    `standardwebhooks` library verifies it, with the period, fraction, budget and spend."""
    account, secret = subscribed
    days = {datetime.now(UTC).date().isoformat()}
    claim = _claimed(account)
    assert claim.watched is True
    with transaction() as session:
        finished = finish_job(session, claim, _outcome(Decimal("0.85")), alert_fractions=FRACTIONS)
        assert finished is not None
        dispatches = enqueue_budget_alerts(session, finished.alerts)
    [(message_id, attempts)] = dispatches
    assert attempts == 0
    with transaction() as session:
        message = session.get(WebhookMessage, message_id)
        assert message is not None
        assert (message.event_type, message.job_id, message.status) == (
            "budget.threshold",
            None,
            "pending",
        )

    deliver_webhook(message_id, 0)
    [request] = receiver.received
    assert request.path == "/hook"
    assert request.headers["webhook-id"] == message_id
    assert verifies(secret, request)
    body = json.loads(request.body)
    assert body["type"] == "budget.threshold"
    days.add(datetime.now(UTC).date().isoformat())
    assert body["data"]["period_start"] in days
    assert body["data"] == {
        "user_id": account.user_id,
        "period": "daily",
        "period_start": body["data"]["period_start"],
        "fraction": 0.8,
        "budget_usd": "1",
        "spent_usd": "0.85",
    }


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("0.5, 0.9,0.5", [Decimal("0.5"), Decimal("0.9")]), ("", []), ("1", [Decimal("1")])],
)
def test_fractions_setting_parses(
    monkeypatch: pytest.MonkeyPatch, value: str, parsed: list[Decimal]
) -> None:
    monkeypatch.setenv("BUDGET_ALERT_FRACTIONS", value)
    assert Settings().budget_alert_fractions == parsed


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "0.12345", "abc"])
def test_fractions_setting_refuses_what_cannot_be_a_fraction(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BUDGET_ALERT_FRACTIONS", value)
    with pytest.raises(pydantic.ValidationError):
        Settings()
