"""batch lifecycle: status, completion window and its timestamps; the indexes of listing and
of the settling beat

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('in_progress', 'cancelling')"
_STATUSES = "'in_progress', 'cancelling', 'completed', 'failed', 'cancelled', 'expired'"
# The window batches had before they had one: the default of BATCH_COMPLETION_WINDOW_S.
_EARLIER_WINDOW = "interval '86400 seconds'"


def upgrade() -> None:
    op.add_column(
        "batches",
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'in_progress'"), nullable=False
        ),
    )
    op.add_column("batches", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    for name in ("completed_at", "cancelled_at", "expired_at"):
        op.add_column("batches", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE batches SET expires_at = created_at + {_EARLIER_WINDOW}")
    # A batch whose jobs were all final is completed already; its events were never promised,
    # so none are sent. The others stay in progress and the beat settles them.
    op.execute(
        "UPDATE batches SET status = 'completed', completed_at = coalesce("
        "(SELECT max(finished_at) FROM jobs WHERE jobs.batch_id = batches.id), created_at) "
        "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id "
        "AND jobs.status IN ('queued', 'running'))"
    )
    op.alter_column("batches", "expires_at", nullable=False)
    op.create_check_constraint(op.f("ck_batches_status"), "batches", f"status IN ({_STATUSES})")
    op.create_index(
        "ix_batches_user_id_created_at", "batches", ["user_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_batches_open_expires_at",
        "batches",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_jobs_batch_id_unfinished",
        "jobs",
        ["batch_id"],
        unique=False,
        postgresql_where=sa.text("batch_id IS NOT NULL AND status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_batch_id_unfinished", table_name="jobs")
    op.drop_index("ix_batches_open_expires_at", table_name="batches")
    op.drop_index("ix_batches_user_id_created_at", table_name="batches")
    op.drop_constraint(op.f("ck_batches_status"), "batches", type_="check")
    for name in ("expired_at", "cancelled_at", "completed_at", "expires_at", "status"):
        op.drop_column("batches", name)
