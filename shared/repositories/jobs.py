"""Jobs: admission, lookup and listing by owner, cancellation, the worker's claim (a lease) and
its fenced final write, which also settles the job's budget reservation."""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Select,
    Uuid,
    bindparam,
    case,
    exists,
    func,
    inspect,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, Insert, insert
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from shared.dispatch_window import UNBOUNDED
from shared.errors import JobNotCancellableError, NotFoundError
from shared.models import Job, JobAttempt, JobStatus
from shared.models.base import Money
from shared.repositories.budgets import hold, release, team_hold
from shared.repositories.job_dispatch import admission_params, dispatched_at_admission

# Job attribute name -> column (`meta` is the column `metadata`), and the attributes whose
# default is a constant, worked out once rather than per admission.
_COLUMN_OF = {name: attribute.columns[0] for name, attribute in inspect(Job).column_attrs.items()}
_CONSTANT_DEFAULTS = [
    (name, column.default.arg)
    for name, column in _COLUMN_OF.items()
    if column.default is not None and column.default.is_scalar
]


def insert_held_job(
    session: Session, values: dict[str, Any], amount: Decimal, window: int | None = None
) -> Job | None:
    """INSERT one queued job (Job attribute values; a new id unless one is given), holding its
    worst case `amount` against the user's budgets and, for a team member, the team's, in the
    same statement (data-modifying WITHs: the user's hold, the team's from its row, then the
    INSERT, its team_id the user's team), and return the row as written (a Job outside the
    session: changing it changes nothing in the database). Given the broker's `window`, the
    same statement dispatches the job when it may go at once (its `dispatched_at` is then set:
    the caller publishes it after the commit), always when the window is off (UNBOUNDED);
    without, it waits in the backlog. None when the
    hold does not fit or the user already has a job with its Idempotency-Key; the caller tells
    the two apart and rolls back, since the hold may have been made."""
    assert "team_id" not in values, "the hold decides the job's team"
    row = {"id": uuid.uuid4(), **values, "status": JobStatus.QUEUED}
    # An INSERT from a SELECT gets no column defaults from SQLAlchemy: add the constant ones.
    for name, default in _CONSTANT_DEFAULTS:
        row.setdefault(name, default)
    if window is None:
        dispatch = _Dispatch.NEVER
    elif window >= UNBOUNDED:
        dispatch = _Dispatch.ALWAYS
    else:
        dispatch = _Dispatch.IF_ROOM
    statement = _insert_statement(tuple(row), values.get("idempotency_key") is not None, dispatch)
    params = {f"v_{name}": value for name, value in row.items()}
    params.update(held_user_id=values["user_id"], held_amount=amount)
    if dispatch is _Dispatch.IF_ROOM:
        assert window is not None
        params.update(admission_params(values["user_id"], row["priority"], window))
    written = session.connection().execute(statement, params).one_or_none()
    if written is None:
        return None
    # A Job outside the session: nothing later expires or reloads it.
    return Job(**{name: written[i] for i, name in enumerate(_COLUMN_OF)})


class _Dispatch(enum.Enum):
    NEVER = "never"
    IF_ROOM = "if_room"
    ALWAYS = "always"


@functools.lru_cache(maxsize=32)
def _insert_statement(names: tuple[str, ...], idempotent: bool, dispatch: _Dispatch) -> Insert:
    """The admission INSERT for a job with these attributes set, built once per shape: building
    it per request was half of the API's CPU per accepted job."""
    amount = bindparam("held_amount", type_=Money)
    held = hold(bindparam("held_user_id", type_=Uuid), amount).cte("held")
    # For a user without a team it matches no row: the same statement, no row more touched.
    team_held = team_hold(held, amount).cte("team_held")
    columns = [_COLUMN_OF[name] for name in names]
    bound: list[ColumnElement[Any]] = [
        bindparam(f"v_{n}", type_=_bind_type(c)) for n, c in zip(names, columns, strict=True)
    ]
    columns.append(_COLUMN_OF["team_id"])
    bound.append(held.c.team_id)
    if dispatch is not _Dispatch.NEVER:
        columns.append(_COLUMN_OF["dispatched_at"])
        bound.append(dispatched_at_admission() if dispatch is _Dispatch.IF_ROOM else func.now())
    # No row unless the user's hold fits and, for a team member, the team's too.
    chosen = (
        select(*bound)
        .select_from(held)
        .where(held.c.team_id.is_(None) | exists(select(team_held.c.team_id)))
    )
    # Core, not the ORM: its per-execution work for an INSERT returning an entity cost more
    # than the statement.
    statement = (
        insert(Job.__table__)
        .from_select(columns, chosen)
        .add_cte(held, team_held)
        .returning(*_COLUMN_OF.values())
    )
    if idempotent:
        # A concurrent first use of the key makes this wait for that transaction's outcome.
        statement = statement.on_conflict_do_nothing(
            index_elements=[_COLUMN_OF["user_id"], _COLUMN_OF["idempotency_key"]],
            index_where=_COLUMN_OF["idempotency_key"].is_not(None),
        )
    return statement


def _bind_type(column: Column[Any]) -> TypeEngine[Any]:
    # None in a JSON column is SQL NULL (no response_format), not the JSON value null.
    return JSONB(none_as_null=True) if isinstance(column.type, JSON) else column.type


def find_by_idempotency_key(session: Session, user_id: uuid.UUID, key: str) -> Job | None:
    """The user's job submitted with this Idempotency-Key, if any."""
    return session.scalars(
        select(Job).where(Job.user_id == user_id, Job.idempotency_key == key)
    ).one_or_none()


def _owned(job_id: str, user_id: uuid.UUID) -> Select[tuple[Job]]:
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise NotFoundError(f"No job with id {job_id!r}.") from None
    return select(Job).where(Job.id == parsed, Job.user_id == user_id)


def get_job_for_user(session: Session, job_id: str, user_id: uuid.UUID) -> Job:
    """The caller's job; someone else's job is indistinguishable from a missing one."""
    job = session.scalars(_owned(job_id, user_id)).one_or_none()
    if job is None:
        raise NotFoundError(f"No job with id {job_id!r}.")
    return job


def cancel_job(session: Session, job_id: str, user_id: uuid.UUID) -> Job:
    """Cancel the caller's queued or running job; JobNotCancellableError once it is final.

    The row lock orders this against the worker's claim and final write.
    """
    job = session.scalars(
        _owned(job_id, user_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if job is None:
        raise NotFoundError(f"No job with id {job_id!r}.")
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise JobNotCancellableError(
            f"Job {job_id} is already {job.status}; only queued or running jobs can be cancelled.",
            details={"status": job.status},
        )
    cancel_jobs(session, Job.id == job.id)
    session.refresh(job)
    return job


def cancel_jobs(
    session: Session, which: ColumnElement[bool], error: dict[str, Any] | None = None
) -> list[uuid.UUID]:
    """Cancel the queued or running jobs `which` selects (locking them), with `error` as their
    reason; the ids cancelled. A queued job's reservation is released here; a running job's
    worker is already billing a call, so its final write settles the reservation (and leaves
    the status cancelled)."""
    rows = session.execute(
        select(Job.id, Job.user_id, Job.team_id, Job.status, Job.reserved_usd)
        .where(which, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        .order_by(Job.id)
        .with_for_update()
    ).all()
    if not rows:
        return []
    release(
        session,
        [(r.user_id, r.team_id, r.reserved_usd) for r in rows if r.status == JobStatus.QUEUED],
    )
    ids = [r.id for r in rows]
    session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(
            status=JobStatus.CANCELLED,
            finished_at=func.now(),
            error=error,
            reserved_usd=case((Job.status == JobStatus.QUEUED, 0), else_=Job.reserved_usd),
            # A running job's worker unsealed its PII mapping at the claim; nobody else needs it.
            pii_vault=None,
        )
        .execution_options(synchronize_session=False)
    )
    return ids


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    priority: str | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    tag: str | None = None


def list_jobs(
    session: Session,
    user_id: uuid.UUID,
    filters: JobFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Job]:
    """The user's jobs newest first (ties broken by id), starting after the (created_at, id)
    position `after`; keyset pagination, so pages never skip or repeat a job."""
    query = select(Job).where(Job.user_id == user_id)
    for column, value in (
        (Job.status, filters.status),
        (Job.priority, filters.priority),
        (Job.model, filters.model),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.created_after is not None:
        query = query.where(Job.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Job.created_at < filters.created_before)
    if filters.tag is not None:
        query = query.where(Job.tags.contains([filters.tag]))
    if after is not None:
        query = query.where(
            tuple_(Job.created_at, Job.id) < tuple_(literal(after[0]), literal(after[1]))
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    return list(session.scalars(query))


def list_attempts(session: Session, job_id: uuid.UUID) -> list[JobAttempt]:
    """A job's attempts in the order they were made."""
    return list(
        session.scalars(
            select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
        )
    )
