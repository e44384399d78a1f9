"""through_outage with the errors a real PostgreSQL connection raises: a connection that cannot be
made is retried until the deadline, anything else is raised at once."""

from __future__ import annotations

import time

import pytest
import sqlalchemy.exc
import sqlalchemy.pool
from sqlalchemy import create_engine, text

from shared.db import get_engine
from worker.resilience.database_retry import through_outage

NOBODY_LISTENS = "postgresql+psycopg://postgres@127.0.0.1:1/promptq?connect_timeout=1"


def _unreachable() -> None:
    engine = create_engine(NOBODY_LISTENS, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def test_a_refused_connection_is_retried_until_it_works() -> None:
    """Two refused connections, then the database answers: the result comes back."""
    calls: list[int] = []
    slept: list[float] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= 2:
            _unreachable()
        return "done"

    result = through_outage(
        operation, deadline=time.monotonic() + 30, what="test", sleep=slept.append
    )
    assert result == "done"
    assert len(calls) == 3 and len(slept) == 2


def test_an_outage_at_the_deadline_is_raised() -> None:
    """Past the deadline (the lease may be gone) the outage is the caller's."""
    with pytest.raises(sqlalchemy.exc.OperationalError):
        through_outage(_unreachable, deadline=time.monotonic() - 1, what="test")


def test_an_error_that_is_not_an_outage_is_not_retried(clean: object) -> None:
    """A statement PostgreSQL refuses (here a syntax error) is a bug, not a blip."""
    calls: list[int] = []

    def operation() -> None:
        calls.append(1)
        with get_engine().connect() as connection:
            connection.execute(text("SELEC 1"))

    with pytest.raises(sqlalchemy.exc.ProgrammingError):
        through_outage(operation, deadline=time.monotonic() + 30, what="test")
    assert calls == [1]
