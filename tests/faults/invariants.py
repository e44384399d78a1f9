"""What must hold after any fault: every job in exactly one final state, each charged exactly
the billed attempts it made (no double charge, no lost charge), never two successes, and no
budget reservation left open, and every user's spend counters equal to the sums they stand
for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from decimal import Decimal

from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from shared.models import FINAL_STATUSES

_FINAL = tuple(str(s) for s in FINAL_STATUSES)

_PER_JOB = text(
    """
    SELECT j.id::text AS id, j.status, j.finished_at, j.lease_token, j.reserved_usd,
           j.cost_usd, j.input_tokens, j.output_tokens,
           COALESCE(u.cost, 0) AS usage_cost, COALESCE(u.rows, 0) AS usage_rows,
           COALESCE(u.orphans, 0) AS usage_orphans,
           COALESCE(a.billed_cost, 0) AS billed_cost, COALESCE(a.billed, 0) AS billed,
           COALESCE(a.billed_in, 0) AS billed_in, COALESCE(a.billed_out, 0) AS billed_out,
           COALESCE(a.successes, 0) AS successes
    FROM jobs j
    LEFT JOIN (
        SELECT u.job_id, SUM(u.cost_usd) AS cost, COUNT(*) AS rows,
               COUNT(*) FILTER (
                   WHERE a.id IS NULL OR a.job_id <> u.job_id OR a.cached
                      OR a.input_tokens + a.output_tokens = 0
               ) AS orphans
        FROM usage u LEFT JOIN job_attempts a ON a.id = u.attempt_id
        GROUP BY u.job_id
    ) u ON u.job_id = j.id
    LEFT JOIN (
        SELECT job_id,
               SUM(cost_usd) FILTER (WHERE billed) AS billed_cost,
               COUNT(*) FILTER (WHERE billed) AS billed,
               SUM(input_tokens) FILTER (WHERE billed) AS billed_in,
               SUM(output_tokens) FILTER (WHERE billed) AS billed_out,
               COUNT(*) FILTER (WHERE outcome IN ('succeeded', 'cached')) AS successes
        FROM (
            SELECT *, (NOT cached AND input_tokens + output_tokens > 0) AS billed
            FROM job_attempts
        ) billed_attempts
        GROUP BY job_id
    ) a ON a.job_id = j.id
    """
)


# Each user's spend counters against the sums they stand for (shared/models/spend.py).
_PER_USER = text(
    """
    SELECT c.user_id::text AS user_id, c.held_usd,
           CASE WHEN c.day = (timezone('UTC', now()))::date THEN c.day_spent_usd ELSE 0 END
               AS day_spent,
           COALESCE((SELECT sum(j.reserved_usd) FROM jobs j WHERE j.user_id = c.user_id), 0)
               AS reserved,
           COALESCE((SELECT sum(u.cost_usd) FROM usage u WHERE u.user_id = c.user_id
                     AND u.created_at >= timezone('UTC', (timezone('UTC', now()))::date
                                                          ::timestamp)), 0) AS usage_today
    FROM spend_counters c
    """
)


def spend_problems() -> list[str]:
    """Where a user's spend counters differ from their open reservations or today's usage."""
    with transaction() as session:
        rows = session.execute(_PER_USER).mappings().all()
    return [
        f"user {r['user_id']}: counters hold ${r['held_usd']} and spent ${r['day_spent']} "
        f"today; reservations ${r['reserved']}, usage today ${r['usage_today']}"
        for r in rows
        if r["held_usd"] != r["reserved"] or r["day_spent"] != r["usage_today"]
    ]


def final_count(job_ids: Collection[str]) -> int:
    """How many of `job_ids` are in a final state, settled by their workers, now."""
    with transaction() as session:
        return session.execute(
            text(
                "SELECT count(*) FROM jobs WHERE id::text = ANY(:ids) AND status = ANY(:final)"
                # A job cancelled while it ran is settled by its worker's final write.
                " AND lease_token IS NULL"
            ),
            {"ids": list(job_ids), "final": list(_FINAL)},
        ).scalar_one()


def wait_all_final(job_ids: Collection[str], timeout: float) -> None:
    """Poll Postgres until every one of `job_ids` is final."""
    wait_until(
        lambda: final_count(job_ids) == len(job_ids),
        timeout=timeout,
        interval=0.25,
        what=f"{len(job_ids)} jobs to reach a final state",
    )


def assert_settled(job_ids: Collection[str]) -> Counter[str]:
    """Check every invariant over the whole jobs table, which must hold exactly `job_ids`;
    returns the number of jobs per final status."""
    with transaction() as session:
        rows = session.execute(_PER_JOB).mappings().all()
    assert sorted(r["id"] for r in rows) == sorted(job_ids)
    problems: list[str] = []
    for r in rows:
        where = f"job {r['id']} ({r['status']})"
        if r["status"] not in _FINAL or r["finished_at"] is None:
            problems.append(f"{where} is not final")
        if r["lease_token"] is not None:
            problems.append(f"{where} still holds a lease")
        if r["reserved_usd"] != Decimal(0):
            problems.append(f"{where} keeps a reservation of {r['reserved_usd']}")
        if r["usage_orphans"]:
            problems.append(f"{where} has usage rows not tied to one of its billed attempts")
        if r["usage_rows"] != r["billed"]:
            problems.append(f"{where}: {r['usage_rows']} usage rows, {r['billed']} billed")
        if not (r["usage_cost"] == r["billed_cost"] == r["cost_usd"]):
            problems.append(
                f"{where}: usage ${r['usage_cost']}, billed attempts ${r['billed_cost']}, "
                f"job ${r['cost_usd']}"
            )
        if (r["input_tokens"], r["output_tokens"]) != (r["billed_in"], r["billed_out"]):
            problems.append(f"{where}: job tokens differ from its billed attempts'")
        # A job cancelled while its call ran may keep that call's success; no job has two.
        allowed = {"succeeded": {1}, "failed": {0}}.get(r["status"], {0, 1})
        if r["successes"] not in allowed:
            problems.append(f"{where} has {r['successes']} successful attempts")
    problems += spend_problems()
    assert not problems, "\n".join(problems[:20])
    return Counter(r["status"] for r in rows)
