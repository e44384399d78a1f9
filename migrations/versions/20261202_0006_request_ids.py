"""request ids: the X-Request-ID of a job's submission on the job and on its webhook messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: adding them rewrites no rows, whatever the tables hold.
    op.add_column("jobs", sa.Column("request_id", sa.String(length=128), nullable=True))
    op.add_column("webhook_messages", sa.Column("request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_messages", "request_id")
    op.drop_column("jobs", "request_id")
