"""input safety: users' PII-scrubbing and injection-screening settings; jobs' effective PII
settings, their encrypted placeholder mapping and their screening verdict

Revision ID: 0013
Revises: 0014
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("scrub_pii", "restore_pii")


def upgrade() -> None:
    for name in (*_FLAGS, "keep_original_prompts"):
        op.add_column(
            "users", sa.Column(name, sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    op.add_column("users", sa.Column("injection_screening", sa.String(8), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_injection_screening"),
        "users",
        "injection_screening IS NULL OR injection_screening IN ('flag', 'reject')",
    )
    for name in _FLAGS:
        op.add_column(
            "jobs", sa.Column(name, sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    op.add_column("jobs", sa.Column("pii_vault", sa.Text(), nullable=True))
    op.add_column(
        "jobs", sa.Column("screening", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("jobs", "screening")
    op.drop_column("jobs", "pii_vault")
    for name in reversed(_FLAGS):
        op.drop_column("jobs", name)
    op.drop_constraint(op.f("ck_users_injection_screening"), "users", type_="check")
    op.drop_column("users", "injection_screening")
    for name in reversed((*_FLAGS, "keep_original_prompts")):
        op.drop_column("users", name)
