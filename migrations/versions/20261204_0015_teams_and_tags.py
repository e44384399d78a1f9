"""teams and tags: teams with budgets and spend counters of their own, users.team_id, the team
that held each job and batch (jobs.team_id, batches.team_id), and jobs.tags; a team's audit
rows (audit_events.user_id NULL)

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TODAY = "(timezone('UTC', now()))::date"
_THIS_MONTH = "(date_trunc('month', timezone('UTC', now())))::date"
_MONEY = sa.Numeric(precision=20, scale=10)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("daily_budget_usd", _MONEY, nullable=True),
        sa.Column("monthly_budget_usd", _MONEY, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "team_spend_counters",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("held_usd", _MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("day", sa.Date(), server_default=sa.text(_TODAY), nullable=False),
        sa.Column("day_spent_usd", _MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("month", sa.Date(), server_default=sa.text(_THIS_MONTH), nullable=False),
        sa.Column("month_spent_usd", _MONEY, server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_spend_counters_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_spend_counters")),
    )
    for table in ("users", "jobs", "batches"):
        op.add_column(table, sa.Column("team_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_team_id_teams"),
            table,
            "teams",
            ["team_id"],
            ["id"],
            ondelete="SET NULL",
        )
    # A team's audit rows belong to no user.
    op.alter_column("audit_events", "user_id", existing_type=sa.Uuid(), nullable=True)
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "jobs",
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.execute("DELETE FROM audit_events WHERE user_id IS NULL")
    op.alter_column("audit_events", "user_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("jobs", "tags")
    for table in ("batches", "jobs", "users"):
        op.drop_constraint(op.f(f"fk_{table}_team_id_teams"), table, type_="foreignkey")
        op.drop_column(table, "team_id")
    op.drop_table("team_spend_counters")
    op.drop_table("teams")
