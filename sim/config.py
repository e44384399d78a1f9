"""Runtime knobs for the provider simulator: the process-wide defaults of `python -m sim`.

Every knob here is the lowest layer of a stack: a runtime rule set through PUT /sim/faults
overrides it for the models it names, and x-sim-* request headers override both for one call.
"""

from dataclasses import dataclass

from sim.fault_kinds import FaultKind


@dataclass(frozen=True)
class SimConfig:
    """Behaviour shared by every request the simulator serves."""

    # Delay before every completion answer, so callers see provider-like timing and
    # concurrency becomes observable in /sim/stats.
    latency_ms: float = 0.0
    # Up to this much extra delay, uniformly drawn, so calls do not finish in lockstep.
    latency_jitter_ms: float = 0.0
    # A fault injected into every completion (None: healthy), at `fault_rate` of the calls.
    fault: FaultKind | str | None = None
    fault_rate: float = 1.0
    # The Retry-After a `rate_limit` fault announces.
    retry_after_s: float = 1.0
    # How long a `hang` holds the connection before dropping it; far past any client timeout,
    # yet bounded so a forgotten hang cannot pin a serving thread for good.
    hang_s: float = 120.0
    # Seeds the jitter draws, so a run can be replayed.
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.fault is not None:
            object.__setattr__(self, "fault", FaultKind(self.fault))
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        for name in ("latency_ms", "latency_jitter_ms", "retry_after_s", "hang_s"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0")
