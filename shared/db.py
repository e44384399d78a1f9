"""Engine and session factory, built lazily per process so forked workers never share sockets.

Pooled connections are not pinged on every checkout (a round trip per transaction on the hot
paths): only one that sat idle in the pool for IDLE_PING_S is tested before use, since only an
idle one can have died unnoticed. A connection that fails mid-use makes SQLAlchemy discard every
connection the pool held before the failure, and `retry_if_stale` lets a transaction's first
statement try once more on a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings

T = TypeVar("T")
IDLE_PING_S = 5.0
_CHECKED_IN_AT = "promptq_checked_in_at"


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process's engine, created on first use (never at import time)."""
    settings = get_settings()
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        # Every statement promptq runs is short; the JIT's compile (tens of ms) only triggers on
        # the inflated estimates of fair dispatch's query over a deep backlog, where it cost
        # more than the query.
        connect_args={"options": "-c jit=off"},
    )
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(_: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _: Any) -> None:
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_S:
        return
    try:
        dbapi_connection.cursor().execute("SELECT 1")
        # psycopg opened a transaction for the ping; the pool hands out connections idle.
        dbapi_connection.rollback()
    except Exception as error:
        # SQLAlchemy's pool answers this by connecting afresh (up to three times).
        raise exc.DisconnectionError() from error


def retry_if_stale(session: Session, statement: Callable[[], T]) -> T:
    """Run a transaction's first statement; if its connection turns out to be dead (nothing
    can have been written on it), roll back and run it once more on a fresh connection."""
    try:
        return statement()
    except exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
        session.rollback()
        return statement()


@lru_cache(maxsize=1)
def get_session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@lru_cache(maxsize=1)
def get_autocommit_session_factory() -> sessionmaker[Session]:
    # The same pool: psycopg switches a connection to autocommit and back without a round trip.
    autocommit = get_engine().execution_options(isolation_level="AUTOCOMMIT")
    return sessionmaker(bind=autocommit, expire_on_commit=False)


@contextmanager
def one_statement() -> Iterator[Session]:
    """A session for a unit of work that is a single statement (atomic by itself): it commits
    as it runs, without the BEGIN and COMMIT round trips of a transaction."""
    session = get_autocommit_session_factory()()
    try:
        yield session
    finally:
        session.close()


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
