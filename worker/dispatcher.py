"""Each job worker's dispatcher thread: fills the broker's window in fair order
(shared/repositories/job_dispatch.py) when a job of this worker finishes, and at least every
`dispatch_interval_s`.

Woken by completions, the window refills as slots free up, not a timer's tick later; many
completions while one dispatch runs make one more dispatch, not many. Off the job's own path: a
slot is free for its next message while this thread dispatches. Workers' dispatchers take turns
through an advisory lock (one fills the window, the others find the turn taken), and a dispatch
that fails (PostgreSQL or Redis away) is tried again at the next wake.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from shared import outbox
from shared.backlog_gauge import add_to_backlog
from shared.db import transaction
from shared.dispatch_window import current_window, window_of
from shared.logging import get_logger
from shared.redis_client import get_redis
from shared.repositories.job_dispatch import dispatch_next
from shared.settings import Settings, get_settings
from worker import metrics

log = get_logger(__name__)


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._own_window = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)

    def start(self, slots: int) -> None:
        """Run for a worker of `slots` slots: whatever the heartbeats say, the window is at least
        this worker's own (after Redis lost its data, until the next heartbeats, it is all
        there is)."""
        self._own_window = window_of(slots, self._settings)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """A slot freed up (a job of this worker finished or went back to the backlog)."""
        self._wake.set()

    def dispatch_once(self) -> int:
        """Fill the window now; the number of jobs dispatched."""
        window = max(self._own_window, current_window(get_redis(), self._settings))
        with transaction() as session:
            dispatched = dispatch_next(session, window)
        outbox.publish(dispatched)
        add_to_backlog(get_redis(), -len(dispatched))
        metrics.jobs_dispatched.inc(len(dispatched))
        return len(dispatched)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._settings.dispatch_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.dispatch_once()
            except Exception as exc:
                log.warning("dispatcher.failed", error=repr(exc))


@lru_cache(maxsize=1)
def get_dispatcher() -> Dispatcher:
    """This process's dispatcher (started by a job worker when it is ready)."""
    return Dispatcher(get_settings())
