"""finish reasons: results written before finish_reason was normalized get promptq's word and
keep the provider's as provider_finish_reason

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The adapters' tables (worker/providers/) as they were when this ran; a migration is a
# snapshot, so it keeps its own copy. Anything else counts as stop, as the adapters count it.
_NORMALIZED = """
    CASE result->>'finish_reason'
        WHEN 'length' THEN 'length'
        WHEN 'max_tokens' THEN 'length'
        WHEN 'model_context_window_exceeded' THEN 'length'
        WHEN 'pause_turn' THEN 'length'
        WHEN 'tool_calls' THEN 'tool_calls'
        WHEN 'function_call' THEN 'tool_calls'
        WHEN 'tool_use' THEN 'tool_calls'
        WHEN 'content_filter' THEN 'content_filter'
        WHEN 'refusal' THEN 'content_filter'
        ELSE 'stop'
    END
"""


def upgrade() -> None:
    op.execute(
        "UPDATE jobs SET result = result || jsonb_build_object("
        f"'finish_reason', {_NORMALIZED}, "
        "'provider_finish_reason', result->'finish_reason') "
        "WHERE result IS NOT NULL AND result->'provider_finish_reason' IS NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE jobs SET result = (result - 'provider_finish_reason') || jsonb_build_object("
        "'finish_reason', result->'provider_finish_reason') "
        "WHERE result->'provider_finish_reason' IS NOT NULL"
    )
