"""Jobs announced final on one Redis pub/sub channel, so long-polls (api/job_waits.py) wake at once.

The worker announces what it finishes, the API what it cancels, the sweeper what it fails. An
announcement is a hint, never the truth: a waiter re-reads the job from PostgreSQL when woken and
at its deadline, so one lost with a Redis restart or a killed process costs latency, not an answer.
Redis and not PostgreSQL's NOTIFY: NOTIFY takes a database-wide lock at every commit that sends
one, which would serialize the workers' final writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import redis

from shared.logging import get_logger
from shared.redis_client import get_redis

_CHANNEL = "promptq:jobs:final:{db}"
_SEPARATOR = ","
log = get_logger(__name__)


def channel(client: redis.Redis) -> str:
    """The channel of `client`'s database: pub/sub ignores database numbers, and two deployments
    sharing one Redis server by database must not wake each other's waiters."""
    return _CHANNEL.format(db=client.connection_pool.connection_kwargs.get("db", 0))


def encode(job_ids: Iterable[uuid.UUID | str]) -> str:
    """One message for many jobs: a busy worker announces a batch in one round trip."""
    return _SEPARATOR.join(str(job_id) for job_id in job_ids)


def decode(message: bytes | str) -> list[str]:
    text = message.decode() if isinstance(message, bytes) else message
    return [job_id for job_id in text.split(_SEPARATOR) if job_id]


def announce(job_ids: Iterable[uuid.UUID | str]) -> None:
    """Tell the waiting long-polls; a Redis error is logged, not raised (see the module's note)."""
    message = encode(job_ids)
    if not message:
        return
    try:
        client = get_redis()
        client.publish(channel(client), message)
    except redis.RedisError as error:
        log.warning("jobs.announce_failed", error=str(error))
