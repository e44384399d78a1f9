"""The operator's audit log, GET /v1/admin/audit: who created users, changed budgets and fair
shares, issued, changed and revoked keys and rotated signing secrets, newest first.

Like every admin route, it needs the operator's ADMIN_API_KEY."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import require_admin
from api.cursor import decode_cursor, encode_cursor
from api.request_scope import db, parse_query
from api.schemas.audit import AuditEventOut, AuditPage, AuditQuery
from shared.repositories.audit_log import AuditFilter, list_events

bp = Blueprint("audit", __name__, url_prefix="/v1/admin/audit")
bp.before_request(require_admin)


@bp.get("")
@openapi.operation(
    summary="Page the audit log of admin and key actions, newest first",
    query=AuditQuery,
    responses={200: AuditPage},
    auth="admin",
    tags=["admin"],
)
def list_audit_events() -> Response:
    """Filter by action, target (type and/or id) and the user concerned; page with cursor."""
    query = parse_query(AuditQuery)
    after = decode_cursor(query.cursor) if query.cursor is not None else None
    filters = AuditFilter(
        action=query.action,
        target_type=query.target_type,
        target_id=query.target_id,
        user_id=query.user_id,
    )
    # One row more than asked tells whether another page exists.
    rows = list_events(db(), filters, after, query.limit + 1)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    out = AuditPage(
        data=[AuditEventOut.model_validate(row) for row in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )
    return jsonify(out.model_dump(mode="json"))
