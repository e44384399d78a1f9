"""audit log and budget alerts: audit_events (who did what to which user, key or secret) and
budget_alerts (the budget fractions each user's day and month have crossed, each once)

Revision ID: 0014
Revises: 0016
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_key_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "changes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_created_id", "audit_events", ["created_at", "id"])
    op.create_index("ix_audit_events_target", "audit_events", ["target_id", "created_at", "id"])
    op.create_index("ix_audit_events_user", "audit_events", ["user_id", "created_at", "id"])
    op.create_table(
        "budget_alerts",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("fraction", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("budget_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("spent_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "period IN ('daily', 'monthly')", name=op.f("ck_budget_alerts_period_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_budget_alerts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "period", "period_start", "fraction", name=op.f("pk_budget_alerts")
        ),
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_index("ix_audit_events_user", table_name="audit_events")
    op.drop_index("ix_audit_events_target", table_name="audit_events")
    op.drop_index("ix_audit_events_created_id", table_name="audit_events")
    op.drop_table("audit_events")
