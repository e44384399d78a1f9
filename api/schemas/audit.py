"""Query and response models of the audit log, GET /v1/admin/audit (pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.bases import RowModel
from api.schemas.pages import CursorQuery, Page

# Spelled out so the document lists them; a test checks they are audit_log's ACTIONS and
# TARGET_TYPES.
AuditAction = Literal[
    "user.created",
    "user.budget_changed",
    "user.share_changed",
    "user.input_safety_changed",
    "user.team_changed",
    "team.created",
    "team.budget_changed",
    "user.callback_secret_rotated",
    "key.issued",
    "key.updated",
    "key.revoked",
    "webhook_endpoint.secret_rotated",
    "webhook_endpoint.created",
    "webhook_endpoint.updated",
    "webhook_endpoint.deleted",
]
TargetType = Literal["user", "api_key", "webhook_endpoint", "team"]


class AuditQuery(CursorQuery):
    """Query string of GET /v1/admin/audit: every filter given must match."""

    action: AuditAction | None = None
    target_type: TargetType | None = None
    target_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(
        default=None, description="The user the target is or belongs to."
    )


class AuditEventOut(RowModel):
    """One admin or key action. It never holds a secret, a key or a hash of one."""

    id: uuid.UUID
    object: Literal["audit_event"] = "audit_event"
    created_at: datetime = Field(description="When the action's transaction ran.")
    actor_type: Literal["admin", "cli", "api_key"] = Field(
        description="admin: the admin API (ADMIN_API_KEY); cli: the `promptq` admin commands; "
        "api_key: the user, with one of their own keys."
    )
    actor_key_id: uuid.UUID | None = Field(description="The key that acted (actor_type api_key).")
    action: AuditAction
    target_type: TargetType
    target_id: uuid.UUID
    user_id: uuid.UUID | None = Field(
        description="The user the target is or belongs to; null for a team."
    )
    changes: dict[str, dict[str, Any]] = Field(
        description='Each field the action changed: {"<field>": {"before": ..., "after": ...}} '
        "(before is null for what the action created). Dollars are decimal strings, times "
        "RFC 3339."
    )


class AuditPage(Page[AuditEventOut]):
    pass
