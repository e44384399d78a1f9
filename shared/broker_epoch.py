"""Noticing that Redis lost its data (a restart without persistence, a flush, a failover to an
empty replica), and since when its present data has been held.

Two kinds of keys: the epoch, set once by whoever first finds it missing (a worker's heartbeat
or a caller asking), holds the time Redis' present data began; and one flag per caller, so each
caller (the sweeper, the webhook dispatcher) is told of a loss exactly once. Work stamped as
published before the epoch had its message in the data that was lost; work stamped after it
was published into the present data, so republishing it would only make copies (harmless but
they crowd the broker's window).

The epoch is written on the workers' clocks and compared with PostgreSQL's; a skew of a few
seconds republishes a few more copies, or leaves a few lost messages to the grace period's
slower search (shared/outbox.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

EPOCH_KEY = "promptq:epoch"
# The flags' names are those of the single-key scheme before the epoch existed, so an upgraded
# deployment's flags still say "noticed" and its first sweep republishes nothing.
_NOTICED_KEY = "promptq:epoch:"


def note_alive(pipe: redis.client.Pipeline) -> None:
    """Queue on `pipe` the command that starts the epoch if Redis lost its data."""
    pipe.set(EPOCH_KEY, repr(time.time()), nx=True)


def broker_lost(client: redis.Redis, name: str) -> datetime | None:
    """When Redis' present data began, the first time `name` asks since Redis lost its data (or
    on its first ask ever); None otherwise."""
    pipe = client.pipeline(transaction=False)
    pipe.set(_NOTICED_KEY + name, "1", nx=True)
    note_alive(pipe)
    pipe.get(EPOCH_KEY)
    first, _, epoch = pipe.execute()
    if not first:
        return None
    return datetime.fromtimestamp(float(epoch), tz=UTC)
