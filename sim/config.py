"""Runtime knobs for the provider simulator."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    """Behaviour shared by every request the simulator serves.

    Fault-injection settings (429 with Retry-After, 5xx/529, hangs, dropped connections,
    malformed bodies) belong here too, next to their per-request header overrides.
    """

    # Delay before every completion answer, so callers see provider-like timing and
    # concurrency becomes observable in /sim/stats.
    latency_ms: float = 0.0
