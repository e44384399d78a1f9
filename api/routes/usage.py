"""GET /v1/usage: the caller's billed tokens and exact cost per UTC day and model."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_user
from api.request_scope import db, parse_query
from api.schemas.usage import UsageOut, UsageQuery, UsageRow, UsageTotals
from shared.repositories.usage import usage_by_day_and_model

bp = Blueprint("usage", __name__, url_prefix="/v1/usage")


@bp.get("")
@openapi.operation(
    summary="Your usage and cost per day and model",
    query=UsageQuery,
    responses={200: UsageOut},
    tags=["usage"],
)
def get_usage() -> Response:
    """Inclusive UTC dates (YYYY-MM-DD), at most 366 days; by default the last 30 days.
    `requests` counts billed attempts; costs are exact decimal dollars as strings."""
    user = current_user()
    query = parse_query(UsageQuery)
    assert query.start is not None and query.end is not None  # UsageQuery fills them in
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
