"""Keeps the leases of this process's running jobs alive while their model calls last, knows
until when each is surely still held (so a write can be retried through a database outage
without outliving its lease), and hands them back when the worker shuts down."""

from __future__ import annotations

import threading
import time
import uuid
from functools import lru_cache

from shared.db import transaction
from shared.logging import get_logger
from shared.repositories.job_leases import Lease, release_leases, renew_leases
from shared.settings import get_settings

log = get_logger(__name__)
# After a failed renewal (Postgres restarting), try again this soon rather than a third of a
# lease later, so the lease is extended as soon as the database answers.
RETRY_RENEWAL_S = 1.0
# Clocks of the worker and the database drift apart a little; stop trusting a lease this early.
SAFETY_MARGIN_S = 1.0


class LeaseKeeper:
    """One daemon thread per process renews every held lease each `lease_s / 3` seconds."""

    def __init__(self, lease_s: int) -> None:
        self._lease_s = lease_s
        # Each held lease -> the monotonic time before its last successful claim or renewal.
        self._held: dict[Lease, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: uuid.UUID, token: uuid.UUID, taken_at: float) -> None:
        """Keep this lease alive; `taken_at` is `time.monotonic()` from before the claim."""
        with self._lock:
            self._held[(job_id, token)] = taken_at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, job_id: uuid.UUID, token: uuid.UUID) -> None:
        with self._lock:
            self._held.pop((job_id, token), None)

    def held_until(self, job_id: uuid.UUID, token: uuid.UUID) -> float:
        """The monotonic time until which this process surely still holds the lease (whatever
        renewals failed since); in the past for a lease it does not hold."""
        with self._lock:
            renewed = self._held.get((job_id, token))
        if renewed is None:
            return 0.0
        return renewed + self._lease_s - SAFETY_MARGIN_S

    def release_all(self) -> int:
        """Return every held job to the queue now (used at shutdown)."""
        self._stop.set()
        with self._lock:
            held, self._held = list(self._held), {}
        if not held:
            return 0
        with transaction() as session:
            released = release_leases(session, held)
        log.info("lease.released_at_shutdown", jobs=released)
        return released

    def _run(self) -> None:
        wait = self._lease_s / 3
        while not self._stop.wait(wait):
            with self._lock:
                held = list(self._held)
            started = time.monotonic()
            try:
                with transaction() as session:
                    renew_leases(session, held, self._lease_s)
            except Exception:
                # Postgres may be restarting: the leases still run until held_until says.
                log.warning("lease.renew_failed", jobs=len(held), exc_info=True)
                wait = RETRY_RENEWAL_S
                continue
            wait = self._lease_s / 3
            with self._lock:
                for lease in held:
                    if lease in self._held:
                        self._held[lease] = started


@lru_cache(maxsize=1)
def get_lease_keeper() -> LeaseKeeper:
    """The process's keeper."""
    return LeaseKeeper(get_settings().job_lease_s)
