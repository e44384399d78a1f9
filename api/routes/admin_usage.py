"""GET /v1/admin/usage: every user's billed tokens and exact cost, grouped, for the operator."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import require_admin
from api.request_scope import parse_query
from api.routes.usage import grouped_usage
from api.schemas.usage import AdminUsageQuery, UsageGroups
from shared.repositories.usage import UsageScope

bp = Blueprint("admin_usage", __name__, url_prefix="/v1/admin/usage")
bp.before_request(require_admin)


@bp.get("")
@openapi.operation(
    summary="Every user's usage and cost per user, model, tag, team or day",
    query=AdminUsageQuery,
    responses={200: UsageGroups},
    auth="admin",
    tags=["admin"],
)
def get_admin_usage() -> Response:
    """As GET /v1/usage with group_by, across users (per user unless asked otherwise), or only
    `user_id`'s, or only what `team_id` was charged for. An unknown id matches no usage."""
    query = parse_query(AdminUsageQuery)
    assert query.start is not None and query.end is not None  # UsageQuery fills them in
    scope = UsageScope(query.start, query.end, user_id=query.user_id, team_id=query.team_id)
    return jsonify(grouped_usage(scope, query.group_by).model_dump(mode="json"))
