"""semantic cache: semantic_cache_entries (per user and scope: sign code, float16 embedding,
answer, expiry) and job_attempts.similarity

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_attempts", sa.Column("similarity", sa.Float(), nullable=True))
    op.create_table(
        "semantic_cache_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.LargeBinary(), nullable=False),
        sa.Column("code", sa.LargeBinary(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_semantic_cache_entries_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_semantic_cache_entries")),
    )
    op.create_index(
        "ix_semantic_cache_entries_scope",
        "semantic_cache_entries",
        ["user_id", "scope", "id"],
    )
    op.create_index(
        "ix_semantic_cache_entries_expires_at", "semantic_cache_entries", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_semantic_cache_entries_expires_at", table_name="semantic_cache_entries")
    op.drop_index("ix_semantic_cache_entries_scope", table_name="semantic_cache_entries")
    op.drop_table("semantic_cache_entries")
    op.drop_column("job_attempts", "similarity")
