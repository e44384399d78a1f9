"""A job worker's heartbeat without a worker: the broker's window the API dispatches into is
sized from the live workers' slots (shared/dispatch_window.py)."""

from __future__ import annotations

from shared.redis_client import get_redis
from shared.worker_heartbeats import beat


def worker_alive(slots: int, hostname: str = "test-worker@host") -> None:
    """Announce a worker with `slots` slots, alive for the next minute."""
    beat(get_redis(), hostname, slots, ttl_s=60)
