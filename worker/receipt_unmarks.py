"""Unmarks the jobs whose messages this worker received (shared/outbox.py), from a thread of its
own, many jobs to one ZREM.

A received message no longer waits in the broker, so its job must lose its outbox mark: then the
sweeper republishes it if the worker dies before claiming it. Celery announces receipts on its
consumer's event loop, and a Redis round trip there, once per message, held up every other
message and the acks. The thread takes whatever receipts have gathered since its last round trip,
so an idle worker unmarks at once and a busy one in batches. Receipts still in memory when the
process dies leave marks behind; the sweeper recognises those by their age, like the marks of an
unmark that failed.
"""

from __future__ import annotations

import queue
import threading
from functools import lru_cache

from shared import outbox
from shared.logging import get_logger

log = get_logger(__name__)
# At most this many job ids per ZREM.
BATCH = 500


class ReceiptUnmarker:
    def __init__(self) -> None:
        # Round trips that failed: their marks are left to the sweeper.
        self.failures = 0
        self._received: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def received(self, job_id: str) -> None:
        """Unmark `job_id` soon; never blocks the caller on Redis."""
        self._received.put(job_id)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="receipt-unmarks", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            ids = [self._received.get()]
            while len(ids) < BATCH:
                try:
                    ids.append(self._received.get_nowait())
                except queue.Empty:
                    break
            try:
                outbox.forget(ids)
            except Exception:
                # Redis is away; the sweeper finds these stale marks by their age.
                self.failures += 1
                log.warning("outbox.unmark_failed", jobs=len(ids))


@lru_cache(maxsize=1)
def get_receipt_unmarker() -> ReceiptUnmarker:
    return ReceiptUnmarker()
