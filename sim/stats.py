"""Thread-safe request counters, so tests can assert on traffic and concurrency."""

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RequestStats:
    """Counts completion requests and tracks how many run at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._by_model: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    @contextmanager
    def track(self, model: str | None) -> Iterator[None]:
        """Count one request (under `model` if known) as in flight for the block's duration."""
        with self._lock:
            self._total += 1
            if model is not None:
                self._by_model[model] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of all counters, as served by GET /sim/stats."""
        with self._lock:
            return {
                "total_requests": self._total,
                "requests_by_model": dict(self._by_model),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    def reset(self) -> None:
        """Zero the counters between test phases.

        Requests still running stay counted as in flight, since they will decrement on exit.
        """
        with self._lock:
            self._total = 0
            self._by_model.clear()
            self._max_in_flight = self._in_flight


def model_of(body: Any) -> str | None:
    """The model a request body names, if any; malformed requests still count in the total."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else None
