"""Kombu's Redis transport, made to survive the broker going away while tasks are in flight.

When Redis drops the connection, Celery's consumer first `collect()`s the broken connection,
which detaches the transport from its kombu Connection (`transport.client = None`), and then
closes it. Closing the channel restores the messages it still holds unacknowledged, which needs a
new Redis client, whose parameters kombu reads from `transport.client`: `AttributeError:
'NoneType' object has no attribute 'hostname'`. That error is neither a connection nor a channel
error, so Celery calls it unrecoverable and the worker exits (kombu 5.7.0; the family of kombu
issues 582 and 970).

Here a channel remembers the parameters it connected with. The restore then reaches Redis with
them, or fails with a connection error that Celery ignores while it reconnects; either way the
worker stays up. Messages it could not restore stay in Redis' unacked set, where the visibility
timeout (or, for the jobs they carry, the sweeper) brings them back.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _remembered_connparams: dict[bool, dict[str, Any]]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        remembered = self.__dict__.setdefault("_remembered_connparams", {})
        if self.connection.client is None and asynchronous in remembered:
            return dict(remembered[asynchronous])
        params = super()._connparams(asynchronous=asynchronous)
        remembered[asynchronous] = dict(params)
        return params


class Transport(redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
