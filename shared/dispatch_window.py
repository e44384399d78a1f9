"""The broker's window: how many jobs may be dispatched (their messages published) and not yet
finished at once. Sized from the live workers' slots, so workers never idle while jobs wait in
PostgreSQL, and Redis holds a few messages per slot however long the backlog grows."""

from __future__ import annotations

import math

import redis

from shared.settings import Settings
from shared.worker_heartbeats import live_slots

# No window (DISPATCH_WINDOW_PER_SLOT=0): every job is dispatched at admission.
UNBOUNDED = 2**31 - 1


def window_of(slots: int, settings: Settings) -> int:
    """The window for `slots` live worker slots."""
    if settings.dispatch_window_per_slot == 0:
        return UNBOUNDED
    return math.ceil(slots * settings.dispatch_window_per_slot)


def current_window(client: redis.Redis, settings: Settings) -> int:
    """The window for the job workers alive now (their heartbeats)."""
    return window_of(live_slots(client, settings.ready_worker_heartbeat_s), settings)
