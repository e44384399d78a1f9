"""A thread of its own that sends whatever items have gathered since its last round trip, many to
one call: an idle worker sends at once, a busy one in batches, and the caller never waits on Redis.

Items still in memory when the process dies are lost; each user says who makes up for that.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from shared.logging import get_logger

log = get_logger(__name__)


class BackgroundBatches:
    def __init__(self, name: str, send: Callable[[list[str]], None], batch: int) -> None:
        self.name = name
        # Round trips that failed; their items are dropped.
        self.failures = 0
        self._send = send
        self._batch = batch
        self._items: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, item: str) -> None:
        """Send `item` soon; never blocks the caller on the round trip."""
        self._items.put(item)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._items.get()]
            while len(items) < self._batch:
                try:
                    items.append(self._items.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(items)
            except Exception:
                self.failures += 1
                log.warning("background_batch.failed", batch=self.name, items=len(items))
