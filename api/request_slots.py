"""At most API_ACTIVE_REQUESTS requests of a process run at once; the others wait their turn, in
the order they came.

Under gunicorn's gevent worker every connection gets a greenlet at once, so 64 concurrent
submissions would all share the core and the database pool together: the throughput of a few
at a time, with the tail latency of everyone waiting on everyone. A bounded, first-come order
keeps the tail where gthread's few threads had it. A long-poll (api/job_waits.py) gives its slot
back while it waits; probes and scrapes take none, so they answer under any load.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from flask import Flask, current_app, g, request

# Cheap, and asked by whoever decides whether this process is alive.
_UNBOUNDED = frozenset({"health.health", "health.ready", "metrics.prometheus_metrics"})
_EXTENSION = "promptq.request_slots"


class RequestSlots:
    def __init__(self, size: int) -> None:
        # threading's primitives wake waiters first come, first served; gevent patches them.
        self._slots = threading.Semaphore(size)

    def register(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self
        app.before_request(self.take)
        app.teardown_request(self.give_back)

    def take(self) -> None:
        if request.endpoint not in _UNBOUNDED:
            self._slots.acquire()
            g.holds_slot = True

    def give_back(self, _: BaseException | None = None) -> None:
        if g.pop("holds_slot", False):
            self._slots.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Run the block without this request's slot (a wait that uses no CPU)."""
        held = g.get("holds_slot", False)
        self.give_back()
        try:
            yield
        finally:
            if held:
                self.take()


def slot_released() -> AbstractContextManager[None]:
    """The current request's slot, given back for the block (see RequestSlots.released)."""
    slots: RequestSlots = current_app.extensions[_EXTENSION]
    return slots.released()
