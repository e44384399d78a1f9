"""fair dispatch: jobs.dispatched_at (PostgreSQL holds the backlog, the broker a window of it),
users.weight and users.max_concurrency, and the dispatcher's indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKLOG = "status = 'queued' AND dispatched_at IS NULL"
_IN_FLIGHT = (
    "dispatched_at IS NOT NULL AND (status IN ('queued', 'running') "
    "OR (status = 'cancelled' AND lease_token IS NOT NULL))"
)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    # Jobs queued or running before this revision had their messages published at admission:
    # they are in flight, and the sweeper publishes again any whose message was lost. A job
    # waiting out a Retry-After had no message: it stays in the backlog, dispatched once due.
    op.execute(
        "UPDATE jobs SET dispatched_at = queued_at WHERE status = 'running' "
        "OR (status = 'queued' AND (not_before IS NULL OR not_before <= now())) "
        "OR (status = 'cancelled' AND lease_token IS NOT NULL)"
    )
    op.add_column(
        "users", sa.Column("weight", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.add_column("users", sa.Column("max_concurrency", sa.Integer(), nullable=True))
    op.create_check_constraint(op.f("ck_users_weight_positive"), "users", "weight >= 1")
    op.create_check_constraint(
        op.f("ck_users_max_concurrency_positive"),
        "users",
        "max_concurrency IS NULL OR max_concurrency >= 1",
    )
    op.create_index(
        "ix_jobs_backlog",
        "jobs",
        ["priority", "user_id", "queued_at"],
        postgresql_where=sa.text(_BACKLOG),
    )
    op.create_index("ix_jobs_in_flight", "jobs", ["user_id"], postgresql_where=sa.text(_IN_FLIGHT))
    op.drop_index(
        "ix_jobs_queued_at", table_name="jobs", postgresql_where=sa.text("status = 'queued'")
    )


def downgrade() -> None:
    op.create_index(
        "ix_jobs_queued_at", "jobs", ["queued_at"], postgresql_where=sa.text("status = 'queued'")
    )
    op.drop_index("ix_jobs_in_flight", table_name="jobs", postgresql_where=sa.text(_IN_FLIGHT))
    op.drop_index("ix_jobs_backlog", table_name="jobs", postgresql_where=sa.text(_BACKLOG))
    op.drop_constraint(op.f("ck_users_max_concurrency_positive"), "users", type_="check")
    op.drop_constraint(op.f("ck_users_weight_positive"), "users", type_="check")
    op.drop_column("users", "max_concurrency")
    op.drop_column("users", "weight")
    op.drop_column("jobs", "dispatched_at")
