"""Keeps the leases of this process's running jobs alive while their model calls last, and hands
them back when the worker shuts down."""

from __future__ import annotations

import threading
import uuid
from functools import lru_cache

from shared.db import transaction
from shared.logging import get_logger
from shared.repositories.job_leases import Lease, release_leases, renew_leases
from shared.settings import get_settings

log = get_logger(__name__)


class LeaseKeeper:
    """One daemon thread per process renews every held lease each `lease_s / 3` seconds."""

    def __init__(self, lease_s: int) -> None:
        self._lease_s = lease_s
        self._held: set[Lease] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: uuid.UUID, token: uuid.UUID) -> None:
        with self._lock:
            self._held.add((job_id, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, job_id: uuid.UUID, token: uuid.UUID) -> None:
        with self._lock:
            self._held.discard((job_id, token))

    def release_all(self) -> int:
        """Return every held job to the queue now (used at shutdown)."""
        self._stop.set()
        with self._lock:
            held, self._held = list(self._held), set()
        if not held:
            return 0
        with transaction() as session:
            released = release_leases(session, held)
        log.info("lease.released_at_shutdown", jobs=released)
        return released

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            with self._lock:
                held = list(self._held)
            try:
                with transaction() as session:
                    renew_leases(session, held, self._lease_s)
            except Exception:
                # Postgres may be restarting; the next round retries well within the lease.
                log.warning("lease.renew_failed", jobs=len(held), exc_info=True)


@lru_cache(maxsize=1)
def get_lease_keeper() -> LeaseKeeper:
    """The process's keeper."""
    return LeaseKeeper(get_settings().job_lease_s)
