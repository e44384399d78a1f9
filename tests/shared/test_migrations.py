"""Alembic builds the schema from empty, and the models and migrations agree."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text, update

from devstack.stack import ROOT
from shared.db import get_engine, transaction
from shared.models import Base, Batch, Job
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
            # Only the column 0007 changes: later revisions' columns are not there yet.
            assert session.scalar(select(Job.result).where(Job.id == job_id)) == earlier
    finally:
        command.upgrade(config, "head")


def test_earlier_batches_get_a_status_and_a_window(
    services: Services, make_account: Callable[[str], Account]
) -> None:
    """0008 gives a batch made before it a day's window from its creation, and the status
    `completed` if its jobs were all final (in_progress otherwise, for the beat to settle); its
    downgrade drops the columns again."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", services.database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    user_id = make_account("migrated").user_id
    finished, unfinished = uuid.uuid4(), uuid.uuid4()
    command.downgrade(config, "0007")
    try:
        with transaction() as session:
            for batch_id in (finished, unfinished):
                session.execute(
                    text(
                        "INSERT INTO batches (id, user_id, total, metadata) "
                        "VALUES (:b, :u, 1, '{}')"
                    ),
                    {"b": batch_id, "u": user_id},
                )
            # Plain SQL: the model's later columns are not there yet.
            for batch_id, status in ((unfinished, "queued"), (finished, "succeeded")):
                session.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, batch_id, custom_id, status, priority, "
                        "model, fallbacks, request, metadata, input_tokens, output_tokens, "
                        "cost_usd, deliveries, created_at) VALUES (:j, :u, :b, 'a', :s, 'normal', "
                        "'gpt-4o-mini', '[]', '{}', '{}', 0, 0, 0, 0, now())"
                    ),
                    {"j": uuid.uuid4(), "u": user_id, "b": batch_id, "s": status},
                )
    finally:
        command.upgrade(config, "head")
    with transaction() as session:
        rows = {b.id: b for b in session.scalars(select(Batch))}
    assert rows[finished].status == "completed"
    assert rows[finished].completed_at is not None
    assert rows[unfinished].status == "in_progress"
    assert rows[unfinished].expires_at - rows[unfinished].created_at == timedelta(days=1)
    command.downgrade(config, "0007")
    try:
        columns = {c["name"] for c in inspect(get_engine()).get_columns("batches")}
        assert "status" not in columns and "expires_at" not in columns
    finally:
        command.upgrade(config, "head")


def test_files_and_openai_batches_downgrade(services: Services) -> None:
    """0009's downgrade drops the files and openai_batches tables; upgrading builds them again."""
    config = Config(str(ROOT / "alembic.ini"))
    command.downgrade(config, "0008")
    try:
        tables = set(inspect(get_engine()).get_table_names())
        assert "files" not in tables and "openai_batches" not in tables
    finally:
        command.upgrade(config, "head")
    assert {"files", "openai_batches"} <= set(inspect(get_engine()).get_table_names())


def test_earlier_batches_get_their_origin(
    services: Services, make_account: Callable[[str], Account]
) -> None:
    """0010 marks a batch behind an OpenAI batch as created through the OpenAI surface, the
    others as promptq's own, and takes a cancelled batch's end as when its cancel was asked;
    its downgrade drops both columns."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", services.database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    user_id = make_account("origins").user_id
    native, openai, cancelled = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    command.downgrade(config, "0009")
    try:
        columns = {c["name"] for c in inspect(get_engine()).get_columns("batches")}
        assert "origin" not in columns and "cancel_requested_at" not in columns
        with transaction() as session:
            for batch_id in (native, openai, cancelled):
                session.execute(
                    text(
                        "INSERT INTO batches (id, user_id, total, metadata, expires_at) "
                        "VALUES (:b, :u, 1, '{}', now() + interval '1 day')"
                    ),
                    {"b": batch_id, "u": user_id},
                )
            session.execute(
                text("UPDATE batches SET status = 'cancelled', cancelled_at = now() WHERE id = :b"),
                {"b": cancelled},
            )
            session.execute(
                text(
                    "INSERT INTO openai_batches "
                    "(id, user_id, batch_id, input_file_id, endpoint, completion_window) "
                    "VALUES (:id, :u, :b, 'file-x', '/v1/chat/completions', '24h')"
                ),
                {"id": f"batch_{openai.hex}", "u": user_id, "b": openai},
            )
    finally:
        command.upgrade(config, "head")
    with transaction() as session:
        rows = {b.id: b for b in session.scalars(select(Batch).where(Batch.user_id == user_id))}
    assert {rows[native].origin, rows[openai].origin} == {"promptq", "openai"}
    assert rows[openai].origin == "openai"
    assert rows[native].cancel_requested_at is None
    assert rows[cancelled].cancel_requested_at == rows[cancelled].cancelled_at


def test_jobs_in_flight_before_fair_dispatch_count_as_dispatched(
    services: Services, make_account: Callable[[str], Account]
) -> None:
    """0011 takes a due queued or a running job of before it as dispatched (its message was
    published at admission) and leaves a final one and one not yet due alone; users get weight
    1 and no cap; its downgrade drops the columns."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", services.database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    user_id = make_account("dispatch-migrated").user_id
    waiting, done = queued_job(user_id), queued_job(user_id)
    # Waiting out a Retry-After: it had no message, so it is not in flight.
    later = queued_job(user_id, not_before=datetime.now(UTC) + timedelta(minutes=5))
    command.downgrade(config, "0010")
    try:
        columns = {c["name"] for c in inspect(get_engine()).get_columns("jobs")}
        assert "dispatched_at" not in columns
        with transaction() as session:
            session.execute(
                text("UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = :j"),
                {"j": done},
            )
    finally:
        command.upgrade(config, "head")
    with transaction() as session:
        stamps = dict(
            session.execute(select(Job.id, Job.dispatched_at).where(Job.user_id == user_id)).all()
        )
        user = session.execute(
            text("SELECT weight, max_concurrency FROM users WHERE id = :u"), {"u": user_id}
        ).one()
    assert stamps[waiting] is not None and stamps[done] is None and stamps[later] is None
    assert (user.weight, user.max_concurrency) == (1, None)
