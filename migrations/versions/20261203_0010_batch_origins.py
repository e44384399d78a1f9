"""batches: the API that created each one (promptq's own, OpenAI's or Anthropic's shape) and
when its cancel was asked for

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORIGINS = "origin IN ('promptq', 'openai', 'anthropic')"


def upgrade() -> None:
    op.add_column(
        "batches",
        sa.Column(
            "origin", sa.String(length=16), server_default=sa.text("'promptq'"), nullable=False
        ),
    )
    op.add_column(
        "batches", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(op.f("ck_batches_origin"), "batches", _ORIGINS)
    op.execute(
        "UPDATE batches SET origin = 'openai' "
        "WHERE id IN (SELECT batch_id FROM openai_batches WHERE batch_id IS NOT NULL)"
    )
    # A batch cancelled before this revision was asked to cancel at the latest when it ended.
    op.execute("UPDATE batches SET cancel_requested_at = cancelled_at WHERE status = 'cancelled'")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_batches_origin"), "batches", type_="check")
    op.drop_column("batches", "cancel_requested_at")
    op.drop_column("batches", "origin")
