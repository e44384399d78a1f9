"""Thread-safe request counters, so tests can assert on traffic, concurrency and faults."""

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from flask import Response

from sim.fault_kinds import FaultKind


class RequestStats:
    """Counts completion requests and injected faults, and tracks how many calls run at once,
    overall and per model (a per-model concurrency cap is only observable per model)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._by_model: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._in_flight_by_model: Counter[str] = Counter()
        self._max_in_flight_by_model: dict[str, int] = {}
        self._faults: Counter[str] = Counter()

    @contextmanager
    def track(self, model: str | None) -> Iterator[None]:
        """Count one request (under `model` if known) as in flight for the block's duration."""
        with self._lock:
            self._total += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            if model is not None:
                self._by_model[model] += 1
                self._in_flight_by_model[model] += 1
                self._max_in_flight_by_model[model] = max(
                    self._max_in_flight_by_model.get(model, 0), self._in_flight_by_model[model]
                )
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                if model is not None:
                    self._in_flight_by_model[model] -= 1

    def answer(self, model: str | None, respond: Callable[[], Response]) -> Response:
        """`respond()`, with the call counted as in flight until its response has been sent: a
        stream's events go out after the view has returned."""
        tracking = ExitStack()
        tracking.enter_context(self.track(model))
        try:
            response = respond()
        except BaseException:
            tracking.close()
            raise
        response.call_on_close(tracking.close)
        return response

    def record_fault(self, kind: FaultKind) -> None:
        """Count one injected fault of `kind`."""
        with self._lock:
            self._faults[kind.value] += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of all counters, as served by GET /sim/stats."""
        with self._lock:
            return {
                "total_requests": self._total,
                "requests_by_model": dict(self._by_model),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "max_in_flight_by_model": dict(self._max_in_flight_by_model),
                "faults_by_kind": dict(self._faults),
            }

    def reset(self) -> None:
        """Zero the counters between test phases.

        Requests still running stay counted as in flight, since they will decrement on exit.
        """
        with self._lock:
            self._total = 0
            self._by_model.clear()
            self._max_in_flight = self._in_flight
            self._max_in_flight_by_model = {
                model: count for model, count in self._in_flight_by_model.items() if count
            }
            self._faults.clear()


def model_of(body: Any) -> str | None:
    """The model a request body names, if any; malformed requests still count in the total."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else None
