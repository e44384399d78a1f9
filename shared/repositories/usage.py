"""Usage totals per UTC day and model, and per model, tag, team, day or user, summed by
PostgreSQL (exact Numeric arithmetic)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, cast, func, literal_column, null, select, true
from sqlalchemy.orm import Session

from shared.models import Job, Team, UsageRecord, User


@dataclass(frozen=True)
class DailyModelUsage:
    date: date
    model: str
    provider: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _utc_day() -> ColumnElement[date]:
    # A literal, not a bind parameter: GROUP BY must repeat the very same expression.
    return cast(func.timezone(literal_column("'UTC'"), UsageRecord.created_at), Date)


def usage_by_day_and_model(
    session: Session, user_id: uuid.UUID, start: date, end: date
) -> list[DailyModelUsage]:
    """The user's billed attempts from `start` to `end` (inclusive UTC days), one row per day,
    model and provider, ordered by day then model."""
    day = _utc_day()
    rows = session.execute(
        select(
            day.label("day"),
            UsageRecord.model,
            UsageRecord.provider,
            func.count().label("requests"),
            func.sum(UsageRecord.input_tokens).label("input_tokens"),
            func.sum(UsageRecord.output_tokens).label("output_tokens"),
            func.sum(UsageRecord.cost_usd).label("cost_usd"),
        )
        .where(
            UsageRecord.user_id == user_id,
            # Bounds on the raw column, so the (user_id, created_at) index serves the range.
            UsageRecord.created_at >= _midnight_utc(start),
            UsageRecord.created_at < _midnight_utc(end + timedelta(days=1)),
        )
        .group_by(day, UsageRecord.model, UsageRecord.provider)
        .order_by(day, UsageRecord.model, UsageRecord.provider)
    )
    return [
        DailyModelUsage(
            date=row.day,
            model=row.model,
            provider=row.provider,
            requests=row.requests,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
        )
        for row in rows
    ]


class GroupBy(enum.StrEnum):
    MODEL = "model"
    TAG = "tag"
    TEAM = "team"
    DAY = "day"
    USER = "user"


@dataclass(frozen=True)
class UsageScope:
    """Whose usage, over which inclusive UTC days: one user's or a team's, or everyone's."""

    start: date
    end: date
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UsageTotal:
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class UsageGroup(UsageTotal):
    key: str | None
    name: str | None


def _sums() -> list[ColumnElement[Any]]:
    return [
        func.count().label("requests"),
        func.coalesce(func.sum(UsageRecord.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(UsageRecord.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(UsageRecord.cost_usd), 0).label("cost_usd"),
    ]


def _scoped(query: Select[Any], scope: UsageScope, has_job: bool) -> Select[Any]:
    """`query` over the usage rows in `scope`; `has_job`: it already joins each row's job."""
    query = query.where(
        UsageRecord.created_at >= _midnight_utc(scope.start),
        UsageRecord.created_at < _midnight_utc(scope.end + timedelta(days=1)),
    )
    if scope.user_id is not None:
        query = query.where(UsageRecord.user_id == scope.user_id)
    if scope.team_id is not None:
        if not has_job:
            query = query.join(Job, Job.id == UsageRecord.job_id)
        query = query.where(Job.team_id == scope.team_id)
    return query


def usage_totals(session: Session, scope: UsageScope) -> UsageTotal:
    """The billed attempts in `scope`, summed once each."""
    row = session.execute(_scoped(select(*_sums()).select_from(UsageRecord), scope, False)).one()
    return UsageTotal(row.requests, row.input_tokens, row.output_tokens, row.cost_usd)


def usage_groups(session: Session, scope: UsageScope, group_by: GroupBy) -> list[UsageGroup]:
    """The billed attempts in `scope` summed per model, tag, team (the one charged at
    admission), UTC day or user, ordered by the group's key (null last: the untagged jobs, or
    what no team paid for). A job with several tags counts in full under each, so the tags'
    sums can exceed the total."""
    query = select().select_from(UsageRecord)
    name: ColumnElement[Any] | None = None
    if group_by is GroupBy.MODEL:
        key: ColumnElement[Any] = UsageRecord.model
    elif group_by is GroupBy.DAY:
        key = _utc_day()
    elif group_by is GroupBy.TAG:
        # An untagged job's usage joins one NULL tag (LEFT JOIN LATERAL unnest).
        tags = func.unnest(Job.tags).table_valued("tag").render_derived(name="t").lateral()
        query = query.join(Job, Job.id == UsageRecord.job_id).outerjoin(tags, true())
        key = tags.c.tag
    elif group_by is GroupBy.TEAM:
        query = query.join(Job, Job.id == UsageRecord.job_id).outerjoin(
            Team, Team.id == Job.team_id
        )
        key, name = Job.team_id, Team.name
    else:
        query = query.join(User, User.id == UsageRecord.user_id)
        key, name = UsageRecord.user_id, User.name
    grouped = [key] if name is None else [key, name]
    query = query.add_columns(
        key.label("key"), (null() if name is None else name).label("name"), *_sums()
    )
    query = _scoped(query, scope, group_by in (GroupBy.TAG, GroupBy.TEAM))
    rows = session.execute(query.group_by(*grouped).order_by(key.asc().nulls_last()))
    return [
        UsageGroup(
            key=None if row.key is None else str(row.key),
            name=row.name,
            requests=row.requests,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
        )
        for row in rows
    ]
