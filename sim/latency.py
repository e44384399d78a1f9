"""Per-request delay: the configured latency, overridable by a request header.

Header overrides let one running simulator serve tests that need different timings;
later fault-injection headers follow the same pattern.
"""

import time
from collections.abc import Mapping

from sim.config import SimConfig

LATENCY_HEADER = "x-sim-latency-ms"


def latency_ms(config: SimConfig, headers: Mapping[str, str]) -> float:
    """Milliseconds to wait before answering; raises ValueError for a malformed header."""
    raw = headers.get(LATENCY_HEADER)
    if raw is None:
        return config.latency_ms
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{LATENCY_HEADER} must be a number, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"{LATENCY_HEADER} must be a finite number >= 0, got {raw!r}")
    return value


def wait(ms: float) -> None:
    """Block the serving thread, as a provider computing its answer would."""
    if ms > 0:
        time.sleep(ms / 1000)
