"""job routing: jobs.routing, the chain `model: "auto"` chose at admission and why

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: adding it rewrites no row.
    op.add_column("jobs", sa.Column("routing", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "routing")
