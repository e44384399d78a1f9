"""Alembic builds the schema from empty, and the models and migrations agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shared.db import get_engine
from shared.models import Base
from tests.conftest import Services


def test_upgrade_head_builds_every_table(services: Services) -> None:
    """`alembic upgrade head` on an empty database (done by the session fixture) made all tables."""
    tables = set(inspect(get_engine()).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_autogenerate_diff_against_models_is_empty(services: Services) -> None:
    """A model change without a migration fails here."""
    with get_engine().connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
