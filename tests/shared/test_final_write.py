"""The one-statement final write: it does everything the full path does for a job nobody watches,
and writes nothing at all when the lease is lost, the job was cancelled, or a webhook waits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from shared.db import one_statement, transaction
from shared.models import Job, JobAttempt, JobStatus, SpendCounter, UsageRecord
from shared.repositories.attempts import AttemptRecord
from shared.repositories.audit_log import CLI
from shared.repositories.final_write import finish_unwatched
from shared.repositories.job_leases import Claim, Outcome, claim_job
from shared.repositories.webhook_endpoints import create_endpoint
from tests.conftest import Account
from tests.support.jobs import queued_job, succeeded_result

HELD = Decimal("0.0100000000")
COST = Decimal("0.0000021000")


def _attempt(cached: bool = False) -> AttemptRecord:
    now = datetime.now(UTC)
    return AttemptRecord(
        provider="openai",
        model="gpt-4o-mini",
        outcome="cached" if cached else "succeeded",
        error_code=None,
        error_message=None,
        latency_ms=12,
        input_tokens=3,
        output_tokens=4,
        cost_usd=Decimal(0) if cached else COST,
        started_at=now,
        finished_at=now,
        cached=cached,
    )


def _outcome(attempt: AttemptRecord) -> Outcome:
    charged = attempt.billed
    return Outcome(
        status=JobStatus.SUCCEEDED,
        result=succeeded_result("ok"),
        error=None,
        input_tokens=attempt.input_tokens if charged else 0,
        output_tokens=attempt.output_tokens if charged else 0,
        cost_usd=attempt.cost_usd if charged else Decimal(0),
    )


def _claimed(account: Account, **extra: Any) -> Claim:
    job_id = queued_job(account.user_id, HELD, dispatched=True, **extra)
    with one_statement() as session:
        claim = claim_job(session, job_id, lease_s=60)
    assert claim is not None
    return claim


def _finish(claim: Claim, attempt: AttemptRecord) -> bool:
    with one_statement() as session:
        return finish_unwatched(session, claim, _outcome(attempt), attempt)


def _state(claim: Claim) -> dict[str, Any]:
    with transaction() as session:
        job = session.get(Job, claim.job_id)
        counter = session.get(SpendCounter, claim.user_id)
        assert job is not None and counter is not None
        attempts = session.scalars(
            select(JobAttempt).where(JobAttempt.job_id == claim.job_id)
        ).all()
        usage = session.scalars(select(UsageRecord).where(UsageRecord.job_id == claim.job_id)).all()
        return {
            "job": (job.status, job.lease_token, job.reserved_usd, job.cost_usd, job.input_tokens),
            "result": job.result,
            "finished": job.finished_at is not None,
            "attempts": [(a.number, a.outcome, a.cost_usd, a.latency_ms) for a in attempts],
            "usage": [(u.attempt_id, u.cost_usd, u.input_tokens, u.output_tokens) for u in usage],
            "attempt_ids": [a.id for a in attempts],
            "counter": (counter.held_usd, counter.day_spent_usd, counter.month_spent_usd),
        }


def test_an_unwatched_job_is_finished_charged_and_settled_at_once(
    make_account: Callable[[str], Account],
) -> None:
    claim = _claimed(make_account("quiet"))
    assert claim.watched is False
    before = _state(claim)
    assert before["counter"] == (HELD, 0, 0)

    assert _finish(claim, _attempt()) is True

    state = _state(claim)
    assert state["job"] == (JobStatus.SUCCEEDED, None, 0, COST, 3)
    assert before["job"][2] == HELD
    assert state["result"] == succeeded_result("ok")
    assert state["finished"]
    assert state["attempts"] == [(1, "succeeded", COST, 12)]
    assert state["usage"] == [(state["attempt_ids"][0], COST, 3, 4)]
    assert state["counter"] == (0, COST, COST)
    # Finished: a second write (a retried commit whose reply was lost) changes nothing.
    assert _finish(claim, _attempt()) is False
    assert _state(claim) == state


def test_a_cached_answer_is_recorded_but_not_charged(
    make_account: Callable[[str], Account],
) -> None:
    claim = _claimed(make_account("cached"))
    assert _finish(claim, _attempt(cached=True)) is True
    state = _state(claim)
    assert state["attempts"] == [(1, "cached", 0, 12)]
    assert state["usage"] == []
    assert state["counter"] == (0, 0, 0)


def test_nothing_is_written_without_the_lease_or_after_a_cancel(
    make_account: Callable[[str], Account],
) -> None:
    account = make_account("fenced")
    stale = _claimed(account)
    taken = Claim(**{**stale.__dict__, "lease_token": uuid.uuid4()})
    before = _state(stale)
    assert _finish(taken, _attempt()) is False
    assert _state(stale) == before

    cancelled = _claimed(account)
    with transaction() as session:
        session.execute(
            update(Job).where(Job.id == cancelled.job_id).values(status=JobStatus.CANCELLED)
        )
    before = _state(cancelled)
    assert _finish(cancelled, _attempt()) is False
    assert _state(cancelled) == before


def test_a_webhook_waiting_on_the_job_sends_it_down_the_full_path(
    make_account: Callable[[str], Account],
) -> None:
    account = make_account("watched")
    with_callback = _claimed(account, callback_url="https://example.com/hook")
    assert with_callback.watched is True
    before = _state(with_callback)
    assert _finish(with_callback, _attempt()) is False
    assert _state(with_callback) == before

    # An endpoint registered after the claim: the claim did not see it, the final write does.
    unwatched_at_claim = _claimed(account)
    assert unwatched_at_claim.watched is False
    with transaction() as session:
        create_endpoint(
            session,
            uuid.UUID(account.user_id),
            url="https://example.com/endpoint",
            event_types=["job.succeeded"],
            description=None,
            enabled=True,
            actor=CLI,
        )
    before = _state(unwatched_at_claim)
    assert _finish(unwatched_at_claim, _attempt()) is False
    assert _state(unwatched_at_claim) == before
    assert _claimed(account).watched is True
