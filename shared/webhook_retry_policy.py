"""How long a webhook message waits before each attempt (the configured schedule, jittered,
and a receiver's Retry-After within it), and how long an endpoint may fail before it is
disabled. Plain arithmetic, no queries: the worker builds it from settings and the code that
records an attempt's result applies it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    schedule_s: Sequence[float]
    jitter: float
    disable_after_s: float

    def wait_before(self, attempt_number: int, retry_after_s: float | None) -> float | None:
        """Seconds before attempt `attempt_number` (1-based), or None past the schedule."""
        if attempt_number > len(self.schedule_s):
            return None
        base = self.schedule_s[attempt_number - 1]
        wait = base * random.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after_s is not None:
            # Honoured, but never beyond the schedule's longest wait.
            wait = max(wait, min(retry_after_s, max(self.schedule_s)))
        return wait
