"""How long to wait before the next try: exponential backoff with full jitter, capped.

Full jitter (a uniform draw from [0, ceiling]) spreads the retries of many workers that failed
together, so they do not hit a recovering provider in synchronized waves. A provider's
Retry-After is a floor, never shortened by the draw or the cap: the provider knows when it will
take calls again.
"""

from __future__ import annotations

import random
from typing import Protocol

# 2 ** 63 already exceeds any cap; stopping there keeps huge attempt numbers from overflowing.
_MAX_DOUBLINGS = 63


class UniformSource(Protocol):
    """What the draw needs: the `random` module or a seeded random.Random both fit."""

    def uniform(self, a: float, b: float) -> float: ...


def compute_backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: UniformSource = random,
) -> float:
    """Seconds to wait after the `attempt`-th failed try (1 for the first failure).

    A uniform draw from [0, min(cap, base * 2 ** (attempt - 1))], raised to `retry_after`
    when the provider asked for a longer wait.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts failed tries from 1, got {attempt}")
    ceiling = min(cap, base * 2 ** min(attempt - 1, _MAX_DOUBLINGS))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
