"""Which library errors mean "a backing service is away for now", translated once into the
domain's retry-later errors. Everything else stays what it is: a bug, or a domain error.

A PostgreSQL failure counts as an outage when the connection itself failed: it could not be
opened (no SQLSTATE: refused, reset, DNS), the server said so (class 08, connection exception;
class 57P, the server shutting down, crashed or still starting up), or SQLAlchemy invalidated
the connection. A Redis failure counts when redis-py could not connect or timed out.
"""

from __future__ import annotations

import redis.exceptions
import sqlalchemy.exc

from shared.errors import BrokerUnavailableError, DatabaseUnavailableError, RetryLaterError

# Long enough for a restart or a failover to finish, short enough that a client is not idle.
RETRY_AFTER_S = 2

_REDIS_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_CONNECTION_SQLSTATE_PREFIXES = ("08", "57P")


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` says PostgreSQL could not be reached or dropped the connection."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return True  # every pooled connection busy or hanging: the database is not answering
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_CONNECTION_SQLSTATE_PREFIXES)


def is_broker_outage(exc: BaseException) -> bool:
    """True when `exc` says Redis could not be reached or did not answer in time."""
    return isinstance(exc, _REDIS_OUTAGES)


def as_unavailable(exc: BaseException) -> RetryLaterError | None:
    """The retry-later error for an outage of PostgreSQL or Redis; None for anything else."""
    if is_database_outage(exc):
        return DatabaseUnavailableError(
            "The database is unavailable for a moment (restarting or failing over); nothing "
            f"was changed. Retry in {RETRY_AFTER_S} s; an Idempotency-Key makes the retry safe.",
            retry_after_s=RETRY_AFTER_S,
        )
    if is_broker_outage(exc):
        return BrokerUnavailableError(
            "The queue service (Redis) is unavailable for a moment; the request was not "
            f"admitted. Retry in {RETRY_AFTER_S} s.",
            retry_after_s=RETRY_AFTER_S,
        )
    return None
