"""A job's final write as one autocommitted statement, for the usual case: the worker still holds
the lease, the job is still running, and no webhook waits on it (no callback URL, no enabled
endpoint of its owner).

Its data-modifying CTEs lock and finish the job, settle the owner's spend counters (and then the
counters of the team that held the job, if any: no row for a job without one), and add the
final attempt and its usage row; PostgreSQL runs them as one atomic statement, so one round trip
does what took seven (BEGIN, five statements, COMMIT). With budget alerts configured, a further CTE
records the budget fractions the charge crossed (budget_alerts.py): nobody is told, as no
endpoint is enabled, but the period's alert is spent. When any condition fails it writes nothing
and the caller takes the full path (`job_leases.finish_job`), which also writes the webhook
messages in the same transaction. An endpoint registered while the statement runs is either in its
snapshot (the full path sees it too) or committed after the job's final state, like one registered
later.

The statement is built once, with bind parameters, and executed on the Core connection: the
ORM's per-statement construction was a fifth of a completed job's worker CPU.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Boolean, Integer, Select, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.types import String, Uuid

from shared.models import Job, JobAttempt, JobStatus, SpendCounter, TeamSpendCounter, UsageRecord
from shared.models.base import Money
from shared.repositories.attempts import AttemptRecord, attempt_row
from shared.repositories.budget_alerts import fractions_param, recorded
from shared.repositories.budgets import spent_plus
from shared.repositories.job_leases import Claim, Outcome, watched

_jobs = Job.__table__
_attempts = JobAttempt.__table__
_usage = UsageRecord.__table__
_counters = SpendCounter.__table__
_team_counters = TeamSpendCounter.__table__
_USAGE_COLUMNS = [
    *("id", "user_id", "job_id", "attempt_id", "provider", "model"),
    *("input_tokens", "output_tokens", "cost_usd"),
]


def _statement(alerting: bool) -> Select[tuple[int]]:
    held = (
        select(_jobs.c.id, _jobs.c.user_id, _jobs.c.team_id, _jobs.c.reserved_usd.label("released"))
        .where(
            _jobs.c.id == bindparam("job_id", type_=Uuid),
            _jobs.c.lease_token == bindparam("token", type_=Uuid),
            _jobs.c.status == JobStatus.RUNNING,
            ~watched(),
        )
        .with_for_update(of=_jobs)
        .cte("held")
    )
    cost = bindparam("cost_usd", type_=Money)
    done = (
        update(_jobs)
        .where(_jobs.c.id == held.c.id)
        .values(
            status=bindparam("status", type_=String),
            result=bindparam("result", type_=JSONB(none_as_null=True)),
            error=bindparam("error", type_=JSONB(none_as_null=True)),
            finished_at=func.now(),
            input_tokens=_jobs.c.input_tokens + bindparam("input_tokens", type_=Integer),
            output_tokens=_jobs.c.output_tokens + bindparam("output_tokens", type_=Integer),
            cost_usd=_jobs.c.cost_usd + cost,
            reserved_usd=Decimal(0),
            lease_token=None,
            lease_expires_at=None,
            pii_vault=None,
        )
        .returning(_jobs.c.id, held.c.user_id, held.c.team_id, held.c.released)
        .cte("done")
    )
    charge = (
        update(_counters)
        .where(_counters.c.user_id == done.c.user_id)
        .values(held_usd=_counters.c.held_usd - done.c.released, **spent_plus(cost))
    )
    # What the team's settlement reads; with alerts, what their detection reads too.
    returned = [done.c.team_id, done.c.released]
    if alerting:
        returned += [
            _counters.c.user_id,
            _counters.c.day,
            _counters.c.day_spent_usd,
            _counters.c.month,
            _counters.c.month_spent_usd,
        ]
    settled = charge.returning(*returned).cte("settled")
    # From the user's settlement, so the user's counter is locked first, as everywhere.
    team_settled = (
        update(_team_counters)
        .where(_team_counters.c.team_id == settled.c.team_id)
        .values(
            held_usd=_team_counters.c.held_usd - settled.c.released,
            **spent_plus(cost, TeamSpendCounter),
        )
        .cte("team_settled")
    )
    number = (
        select(func.coalesce(func.max(_attempts.c.number), 0) + 1)
        .where(_attempts.c.job_id == done.c.id)
        .scalar_subquery()
    )
    attempt_columns = [c for c in _attempts.c if c.name not in ("id", "job_id", "number")]
    attempt = (
        insert(_attempts)
        .from_select(
            ["id", "job_id", "number", *(c.name for c in attempt_columns)],
            select(
                bindparam("attempt_id", type_=Uuid),
                done.c.id,
                number,
                *(bindparam(f"a_{c.name}", type_=c.type) for c in attempt_columns),
            ),
        )
        .cte("attempt")
    )
    usage = (
        insert(_usage)
        .from_select(
            _USAGE_COLUMNS,
            select(
                bindparam("usage_id", type_=Uuid),
                done.c.user_id,
                done.c.id,
                bindparam("attempt_id", type_=Uuid),
                bindparam("a_provider", type_=String),
                bindparam("a_model", type_=String),
                bindparam("input_tokens", type_=Integer),
                bindparam("output_tokens", type_=Integer),
                cost,
            ).where(bindparam("billed", type_=Boolean)),
        )
        .cte("usage")
    )
    statement = (
        select(func.count()).select_from(done).add_cte(settled, team_settled, attempt, usage)
    )
    return statement.add_cte(recorded(settled, cost)) if alerting else statement


_FINISH = _statement(alerting=False)
_FINISH_ALERTING = _statement(alerting=True)


def finish_unwatched(
    session: Session,
    claim: Claim,
    outcome: Outcome,
    attempt: AttemptRecord,
    alert_fractions: Sequence[Decimal] = (),
) -> bool:
    """Write the final state, the final attempt and its charge at once if the job still runs
    under this lease and no webhook waits on it; False (nothing written) otherwise. With
    `alert_fractions`, the budget fractions the charge crossed are recorded too. `session`
    must be an autocommit one (shared.db.one_statement)."""
    row = attempt_row(attempt)
    params = {f"a_{name}": value for name, value in row.items()}
    params.update(
        job_id=claim.job_id,
        token=claim.lease_token,
        status=outcome.status,
        result=outcome.result,
        error=outcome.error,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd,
        attempt_id=uuid.uuid4(),
        usage_id=uuid.uuid4(),
        billed=attempt.billed,
    )
    statement = _FINISH
    if alert_fractions and outcome.cost_usd:
        statement = _FINISH_ALERTING
        params.update(fractions_param(alert_fractions))
    return session.connection().execute(statement, params).scalar_one() == 1
