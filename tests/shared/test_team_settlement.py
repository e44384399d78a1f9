"""A team member's job settles on the team's counter as on the member's: the worker's one-
statement and full final writes, a billed attempt before the last, and the sweeper's release
of a vanished worker's job each move the team's held and spent totals with the user's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text, update

from shared.db import one_statement, transaction
from shared.models import Job, JobStatus, SpendCounter, User
from shared.repositories.attempts import AttemptRecord, record_attempt
from shared.repositories.final_write import finish_unwatched
from shared.repositories.job_leases import Claim, Outcome, add_charge, claim_job, finish_job
from shared.repositories.sweeper import expire_leases
from tests.conftest import Account
from tests.support.jobs import queued_job, succeeded_result
from tests.support.teams import make_team, team_counter

HELD = Decimal("0.0100000000")
COST = Decimal("0.0000021000")


def _attempt() -> AttemptRecord:
    now = datetime.now(UTC)
    return AttemptRecord("openai", "gpt-4o-mini", "succeeded", None, None, 12, 3, 4, COST, now, now)


def _outcome() -> Outcome:
    return Outcome(JobStatus.SUCCEEDED, succeeded_result("ok"), None, 3, 4, COST)


def _claimed(account: Account) -> Claim:
    job_id = queued_job(account.user_id, HELD, dispatched=True)
    with one_statement() as session:
        claim = claim_job(session, job_id, lease_s=60)
    assert claim is not None
    return claim


def _user_counter(claim: Claim) -> tuple[Decimal, Decimal, Decimal]:
    with transaction() as session:
        counter = session.get(SpendCounter, claim.user_id)
        assert counter is not None
        return counter.held_usd, counter.day_spent_usd, counter.month_spent_usd


def test_the_one_statement_final_write_gives_the_rest_back_to_the_team(
    make_account: Callable[[str], Account],
) -> None:
    """A job finishing cheaper than its hold: the team, like the user, is charged the cost and
    holds nothing more; the claim knows the job's team."""
    alice = make_account("alice")
    team_id = make_team("eng", alice, daily=HELD * 3)
    claim = _claimed(alice)
    assert claim.team_id == team_id
    assert team_counter(team_id) == (HELD, 0, 0)
    with one_statement() as session:
        assert finish_unwatched(session, claim, _outcome(), _attempt())
    assert team_counter(team_id) == (0, COST, COST) == _user_counter(claim)


def test_the_full_final_write_and_an_earlier_billed_attempt_charge_the_team(
    make_account: Callable[[str], Account],
) -> None:
    """A billed attempt before the last (add_charge) and the full path's final write
    (finish_job) bill the team with the user, and release the team's hold."""
    alice = make_account("alice")
    team_id = make_team("eng", alice)
    claim = _claimed(alice)
    with transaction() as session:
        add_charge(session, claim, 3, 4, COST)
    assert team_counter(team_id) == (HELD, COST, COST)
    with transaction() as session:
        assert finish_job(session, claim, _outcome()) is not None
        record_attempt(session, job_id=claim.job_id, user_id=claim.user_id, attempt=_attempt())
    assert team_counter(team_id) == (0, COST * 2, COST * 2) == _user_counter(claim)


def test_the_sweeper_releases_a_vanished_workers_hold_on_the_team(
    make_account: Callable[[str], Account],
) -> None:
    """A job whose worker vanished too often fails as worker_lost; its hold leaves the team's
    counter with the user's, and a job without a team beside it leaves the team alone."""
    alice, bob = make_account("alice"), make_account("bob")
    team_id = make_team("eng", alice)
    claims = [_claimed(alice), _claimed(bob)]
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_([c.job_id for c in claims]))
            .values(lease_expires_at=text("now() - interval '1 second'"), deliveries=5)
        )
    with transaction() as session:
        failed = expire_leases(session, max_deliveries=5).failed
    assert sorted(failed) == sorted(c.job_id for c in claims)
    assert team_counter(team_id) == (0, 0, 0)
    assert [_user_counter(c)[0] for c in claims] == [0, 0]
    with transaction() as session:
        assert session.get(Job, uuid.UUID(str(claims[1].job_id))).team_id is None


def test_with_budget_alerts_the_team_is_still_charged_in_the_same_statement(
    make_account: Callable[[str], Account],
) -> None:
    """The alerting variants of the settlement (a billed attempt, then the one-statement final
    write) record the member's crossed fractions and charge the team as the plain ones do."""
    alice = make_account("alice")
    team_id = make_team("eng", alice)
    with transaction() as session:
        session.execute(
            update(User).where(User.id == uuid.UUID(alice.user_id)).values(daily_budget_usd=HELD)
        )
    claim = _claimed(alice)
    # 0.01% of the budget: the first charge crosses it.
    fractions = [Decimal("0.0001"), Decimal("1")]
    with transaction() as session:
        alerts = add_charge(session, claim, 3, 4, COST, alert_fractions=fractions)
    assert [(a.period, a.fraction) for a in alerts] == [("daily", Decimal("0.0001"))]
    with one_statement() as session:
        assert finish_unwatched(session, claim, _outcome(), _attempt(), alert_fractions=fractions)
    assert team_counter(team_id) == (0, COST * 2, COST * 2) == _user_counter(claim)
