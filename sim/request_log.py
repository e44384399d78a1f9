"""The bodies of the latest completion requests, so a test can see exactly what a provider was
sent (GET /sim/requests), e.g. that a scrubbed prompt never carried the original."""

import threading
from collections import deque
from typing import Any

# Enough for any one test's calls; bounded so a long bench run cannot grow the simulator.
MAX_LOGGED = 500


class RequestLog:
    def __init__(self, size: int = MAX_LOGGED) -> None:
        self._lock = threading.Lock()
        self._bodies: deque[Any] = deque(maxlen=size)

    def record(self, path: str, body: Any) -> None:
        """Keep one request's JSON body (None when it was not JSON) and the path it came to."""
        with self._lock:
            self._bodies.append({"path": path, "body": body})

    def snapshot(self) -> list[dict[str, Any]]:
        """The kept requests, oldest first."""
        with self._lock:
            return list(self._bodies)

    def clear(self) -> None:
        with self._lock:
            self._bodies.clear()
