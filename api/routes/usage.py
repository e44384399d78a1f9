"""GET /v1/usage: the caller's billed tokens and exact cost per UTC day and model, or per model,
tag, team or day."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_user
from api.request_scope import db, parse_query
from api.schemas.usage import (
    UsageAnswer,
    UsageGroup,
    UsageGroupQuery,
    UsageGroups,
    UsageOut,
    UsageRow,
    UsageTotals,
)
from shared.repositories.usage import (
    GroupBy,
    UsageScope,
    usage_by_day_and_model,
    usage_groups,
    usage_totals,
)

bp = Blueprint("usage", __name__, url_prefix="/v1/usage")


def grouped_usage(scope: UsageScope, group_by: str) -> UsageGroups:
    """The usage in `scope` per group, and its totals (two statements)."""
    session = db()
    rows = usage_groups(session, scope, GroupBy(group_by))
    totals = usage_totals(session, scope)
    return UsageGroups(
        group_by=group_by,
        start=scope.start,
        end=scope.end,
        data=[UsageGroup.model_validate(row) for row in rows],
        totals=UsageTotals.model_validate(totals, from_attributes=True),
    )


@bp.get("")
@openapi.operation(
    summary="Your usage and cost per day and model, or per model, tag, team or day",
    query=UsageGroupQuery,
    responses={200: UsageAnswer},
    tags=["usage"],
)
def get_usage() -> Response:
    """Inclusive UTC dates (YYYY-MM-DD), at most 366 days; by default the last 30 days.
    `requests` counts billed attempts; costs are exact decimal dollars as strings. With
    `group_by`, one row per group (`object: usage.groups`)."""
    user = current_user()
    query = parse_query(UsageGroupQuery)
    assert query.start is not None and query.end is not None  # UsageQuery fills them in
    if query.group_by is not None:
        scope = UsageScope(query.start, query.end, user_id=user.id)
        return jsonify(grouped_usage(scope, query.group_by).model_dump(mode="json"))
    rows = usage_by_day_and_model(db(), user.id, query.start, query.end)
    out = UsageOut(
        start=query.start,
        end=query.end,
        data=[UsageRow.model_validate(row) for row in rows],
        # Adding these few exact Decimal sums is exact too.
        totals=UsageTotals(
            requests=sum(row.requests for row in rows),
            input_tokens=sum(row.input_tokens for row in rows),
            output_tokens=sum(row.output_tokens for row in rows),
            cost_usd=sum((row.cost_usd for row in rows), Decimal(0)),
        ),
    )
    return jsonify(out.model_dump(mode="json"))
