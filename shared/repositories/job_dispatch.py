"""Fair dispatch: which queued jobs get a message in the broker, and when.

PostgreSQL holds the backlog (queued jobs with no `dispatched_at`); the broker holds a bounded
window of it (shared/dispatch_window.py). A job is dispatched (stamped, then published) when it
is next in fair order and the window has room for its class: fewer jobs than the window are in
flight at its class or above it, so lower classes never keep a higher one waiting, and the
broker holds at most a window per class:

- priority classes are strict: high before normal before low;
- within a class, users take turns weighted by `users.weight`: a user's next job's turn is
  (its jobs in flight + its place in its own backlog) / weight, lowest first, so a user with no
  job in flight goes ahead of one with many, and a weight of 3 gets three turns to another's one;
- `users.max_concurrency` caps a user's jobs in flight (dispatched and not finished) across all
  workers; a capped user's backlog waits while others' go ahead.

A job that goes back to `queued` (a long Retry-After, a lease that expired, a shutdown) loses its
stamp and waits its turn again. A stamped job still queued whose message was lost is published
again by the sweeper (redispatch_lost), the same way webhook messages are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from shared.models import Job, JobStatus, Priority, User

# Strict order of the classes.
PRIORITY_ORDER: tuple[str, ...] = (Priority.HIGH.value, Priority.NORMAL.value, Priority.LOW.value)
# One dispatcher at a time: a second one finding the lock taken leaves the window to it.
DISPATCH_LOCK = 0x70726F6D70747164  # "promptqd"
# The partial indexes' predicates, spelled with literals wherever they filter: with bound
# parameters instead, a prepared statement's generic plan cannot prove a partial index applies
# and scans the table (the admission's INSERT grew by milliseconds with the backlog).
# In flight: dispatched and not finished, a cancelled job included while its worker still holds
# the lease (its call goes on until the worker notices); ix_jobs_in_flight.
IN_FLIGHT_SQL = (
    "dispatched_at IS NOT NULL AND (status IN ('queued', 'running') "
    "OR (status = 'cancelled' AND lease_token IS NOT NULL))"
)
# In the backlog (ix_jobs_backlog).
BACKLOG_SQL = "status = 'queued' AND dispatched_at IS NULL"
_DUE_SQL = "(not_before IS NULL OR not_before <= now())"

_DISPATCH = text(
    f"""
WITH RECURSIVE
in_flight AS MATERIALIZED (
    SELECT user_id, priority, count(*) AS n FROM jobs WHERE {IN_FLIGHT_SQL}
    GROUP BY user_id, priority
),
per_user AS MATERIALIZED (SELECT user_id, sum(n) AS n FROM in_flight GROUP BY user_id),
-- Per class: the window less what is in flight at this class or above it.
room AS MATERIALIZED (
    SELECT c.priority, c.class,
           greatest(0, :window - coalesce((
               SELECT sum(f.n) FROM in_flight f
               WHERE array_position(CAST(:order AS text[]), f.priority::text) <= c.class
           ), 0))::bigint AS n
    FROM unnest(CAST(:order AS text[])) WITH ORDINALITY AS c(priority, class)
),
waiting AS (
    -- The (class, user) pairs with a backlog, one index probe each (a loose index scan).
    (SELECT priority, user_id FROM jobs
     WHERE status = 'queued' AND dispatched_at IS NULL AND (SELECT max(n) FROM room) > 0
     ORDER BY priority, user_id LIMIT 1)
    UNION ALL
    SELECT later.priority, later.user_id FROM waiting w CROSS JOIN LATERAL (
        SELECT priority, user_id FROM jobs
        WHERE status = 'queued' AND dispatched_at IS NULL
          AND (priority, user_id) > (w.priority, w.user_id)
        ORDER BY priority, user_id LIMIT 1
    ) later
),
candidates AS (
    SELECT next.id, w.user_id, next.queued_at, r.class,
           (coalesce(f.n, 0) + next.place)::float8 / u.weight AS turn,
           coalesce(u.max_concurrency - coalesce(f.n, 0), :window) AS allowance
    FROM waiting w
    JOIN room r ON r.priority = w.priority
    JOIN users u ON u.id = w.user_id
    LEFT JOIN per_user f ON f.user_id = w.user_id
    CROSS JOIN LATERAL (
        SELECT j.id, j.queued_at, row_number() OVER (ORDER BY j.queued_at) AS place
        FROM (
            SELECT id, queued_at FROM jobs
            WHERE status = 'queued' AND dispatched_at IS NULL
              AND priority = w.priority AND user_id = w.user_id
              AND (not_before IS NULL OR not_before <= now())
            ORDER BY queued_at LIMIT r.n
        ) j
    ) next
),
allowed AS (
    SELECT id, class, turn, queued_at FROM (
        SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY class, turn) AS nth
        FROM candidates
    ) ranked
    WHERE nth <= allowance
),
chosen AS (
    -- In fair order, each job fits if it and those before it fit in its class's room (a
    -- higher class's jobs take room from the lower ones, never the other way).
    SELECT a.id FROM (
        SELECT id, class, row_number() OVER (ORDER BY class, turn, queued_at) AS k FROM allowed
    ) a
    JOIN room r ON r.class = a.class
    WHERE a.k <= r.n
)
UPDATE jobs SET dispatched_at = now()
-- An array, so the few chosen rows are found by their ids, never by a scan of the backlog.
WHERE jobs.id = ANY(ARRAY(SELECT id FROM chosen))
  AND jobs.status = 'queued' AND jobs.dispatched_at IS NULL
RETURNING jobs.id, jobs.priority
"""
).bindparams(
    bindparam("window", type_=Integer),
    bindparam("order", value=list(PRIORITY_ORDER), type_=ARRAY(String)),
)


def dispatch_next(session: Session, window: int) -> list[tuple[str, str]]:
    """Stamp the next jobs in fair order, as many as the window of `window` jobs in flight has
    room for, and return them as (id, priority) to publish once committed. Nothing when another
    dispatcher holds the turn (it fills the same window). `session` must be in a transaction:
    the turn is its advisory lock, taken in a statement of its own so the dispatch's snapshot
    sees what the previous holder committed."""
    if not session.scalar(select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))):
        return []
    rows = session.execute(_DISPATCH, {"window": window}).all()
    return [(str(row.id), row.priority) for row in rows]


def dispatched_at_admission() -> ColumnElement[Any]:
    """`dispatched_at` for a job being admitted (bound parameters dispatch_user, dispatch_ahead:
    its class and the ones above it, dispatch_window): now when the window has room, no due job
    of its class or a higher one waits in the backlog (a new job never passes a waiting one of
    its own class: the dispatcher decides their order), and its user has no cap (concurrent
    admissions cannot see each other's jobs, so only the dispatcher, one at a time, may fill a
    capped user's places); otherwise NULL, and the dispatcher takes it in its turn."""
    user = bindparam("dispatch_user", type_=Uuid)
    window = bindparam("dispatch_window", type_=Integer)
    ahead = bindparam("dispatch_ahead", type_=ARRAY(String))
    # Unqualified names in the fragments are the subquery's own table's (its innermost scope).
    backlog = Job.__table__.alias("backlog")
    flying = Job.__table__.alias("flying")
    # A class's room: the window less what is in flight at its class or above (a high job never
    # waits for a window full of lower ones).
    total = (
        select(func.count())
        .select_from(flying)
        .where(text(IN_FLIGHT_SQL), flying.c.priority == func.any(ahead))
        .scalar_subquery()
    )
    cap = select(User.max_concurrency).where(User.id == user).scalar_subquery()
    waiting = (
        exists()
        .select_from(backlog)
        .where(text(BACKLOG_SQL), backlog.c.priority == func.any(ahead), text(_DUE_SQL))
    )
    room = and_(total < window, ~waiting, cap.is_(None))
    return case((room, func.now()), else_=None)


def admission_params(user_id: uuid.UUID, priority: str, window: int) -> dict[str, object]:
    """The bound values dispatched_at_admission() reads."""
    place = PRIORITY_ORDER.index(priority)
    return {
        "dispatch_user": user_id,
        "dispatch_window": window,
        "dispatch_ahead": list(PRIORITY_ORDER[: place + 1]),
    }


def dispatch_batch(session: Session, batch_id: uuid.UUID) -> list[tuple[str, str]]:
    """With the window off: stamp every job of a batch just admitted, to publish them all."""
    rows = session.execute(
        update(Job)
        .where(
            Job.batch_id == batch_id, Job.status == JobStatus.QUEUED, Job.dispatched_at.is_(None)
        )
        .values(dispatched_at=func.now())
        .returning(Job.id, Job.priority)
        .execution_options(synchronize_session=False)
    ).all()
    return [(str(row.id), row.priority) for row in rows]


def redispatch_lost(
    session: Session, cutoffs: Mapping[str, datetime], limit: int
) -> list[tuple[str, str]]:
    """Stamp again queued jobs dispatched before their class's cutoff (their message is no longer
    in the broker: consumed by a worker that died before its claim, never published, or lost
    with Redis' data) and return them as (id, priority) to publish again. A duplicate message
    costs nothing: a claim takes a job once."""
    if not cutoffs:
        return []
    lost = (
        select(Job.id)
        .where(
            text("status = 'queued' AND dispatched_at IS NOT NULL"),
            # Not due yet: its message would be refused; it goes again once due.
            text(_DUE_SQL),
            or_(*(and_(Job.priority == p, Job.dispatched_at < c) for p, c in cutoffs.items())),
        )
        .order_by(Job.dispatched_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(lost))
        .values(dispatched_at=func.now())
        .returning(Job.id, Job.priority)
        .execution_options(synchronize_session=False)
    ).all()
    return [(str(row.id), row.priority) for row in rows]


def dispatched_stamps(session: Session, job_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these jobs, still queued, was last dispatched."""
    ids = [uuid.UUID(j) for j in job_ids]
    if not ids:
        return {}
    rows = session.execute(
        select(Job.id, Job.dispatched_at).where(
            Job.id.in_(ids), Job.status == JobStatus.QUEUED, Job.dispatched_at.is_not(None)
        )
    ).all()
    return {str(row.id): row.dispatched_at for row in rows}


def backlog_depth(session: Session) -> int:
    """Queued jobs not dispatched (ix_jobs_backlog)."""
    return int(session.scalar(select(func.count()).select_from(Job).where(text(BACKLOG_SQL))) or 0)
