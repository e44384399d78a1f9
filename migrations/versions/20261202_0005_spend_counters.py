"""spend counters: each user's held and spent totals, so admission needs no lock and no sums

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TODAY = "(timezone('UTC', now()))::date"
_THIS_MONTH = "(date_trunc('month', timezone('UTC', now())))::date"


def upgrade() -> None:
    op.create_table(
        "spend_counters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "held_usd",
            sa.Numeric(precision=20, scale=10),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), server_default=sa.text(_TODAY), nullable=False),
        sa.Column(
            "day_spent_usd",
            sa.Numeric(precision=20, scale=10),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("month", sa.Date(), server_default=sa.text(_THIS_MONTH), nullable=False),
        sa.Column(
            "month_spent_usd",
            sa.Numeric(precision=20, scale=10),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_spend_counters_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_spend_counters")),
    )
    # Existing users start from the sums the counters stand for.
    op.execute(
        f"""
        INSERT INTO spend_counters (user_id, held_usd, day, day_spent_usd, month, month_spent_usd)
        SELECT u.id,
               COALESCE((SELECT sum(j.reserved_usd) FROM jobs j
                         WHERE j.user_id = u.id AND j.reserved_usd > 0), 0),
               {_TODAY},
               COALESCE((SELECT sum(s.cost_usd) FROM usage s WHERE s.user_id = u.id
                         AND s.created_at >= timezone('UTC', {_TODAY}::timestamp)), 0),
               {_THIS_MONTH},
               COALESCE((SELECT sum(s.cost_usd) FROM usage s WHERE s.user_id = u.id
                         AND s.created_at >= timezone('UTC', {_THIS_MONTH}::timestamp)), 0)
        FROM users u
        """
    )


def downgrade() -> None:
    op.drop_table("spend_counters")
