"""Alembic builds the schema from empty, and the models and migrations agree."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, update

from devstack.stack import ROOT
from shared.db import get_engine, transaction
from shared.models import Base, Job
from tests.conftest import Account, Services
from tests.support.jobs import queued_job


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


def test_earlier_results_get_normalized_finish_reasons(
    services: Services, make_account: Callable[[str], Account]
) -> None:
    """0007 gives a result written before it promptq's finish_reason and keeps the provider's as
    provider_finish_reason; its downgrade puts the provider's back."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", services.database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    earlier = {"content": "x", "finish_reason": "max_tokens", "provider": "anthropic"}
    job_id = queued_job(make_account("migrated").user_id)
    command.downgrade(config, "0006")
    try:
        with transaction() as session:
            session.execute(update(Job).where(Job.id == job_id).values(result=earlier))
    finally:
        command.upgrade(config, "head")
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.result == {
            **earlier,
            "finish_reason": "length",
            "provider_finish_reason": "max_tokens",
        }
    command.downgrade(config, "0006")
    try:
        with transaction() as session:
            job = session.get(Job, job_id)
            assert job is not None
            assert job.result == earlier
    finally:
        command.upgrade(config, "head")
