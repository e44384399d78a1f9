"""Decides, per completion call, how late the simulator answers and which fault (if any) it
injects.

Three layers, most specific first: x-sim-* request headers (one call), runtime rules set through
PUT /sim/faults (per model, switchable during a test), then SimConfig (the whole process).

Rates are exact rather than random: a source failing at rate r fails call n exactly when
floor(n * r) > floor((n - 1) * r), so 30% means calls 4, 7 and 10 of every ten. Tests can then
assert precise shares, and a circuit breaker sees the same sequence on every run.
"""

import math
import random
import threading
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from sim.config import SimConfig
from sim.fault_kinds import FaultKind

FAULT_HEADER = "x-sim-fault"
FAULT_RATE_HEADER = "x-sim-fault-rate"
LATENCY_HEADER = "x-sim-latency-ms"
RETRY_AFTER_HEADER = "x-sim-retry-after"


class FaultRule(BaseModel):
    """One runtime rule: for models matching `model` (a name or a glob such as "*" or
    "claude-*"), inject `kind` at `rate` and/or add latency. Unset fields inherit SimConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    kind: FaultKind | None = None
    rate: float = Field(default=1.0, ge=0, le=1)
    retry_after_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    latency_jitter_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class FaultRules(BaseModel):
    """The body of PUT /sim/faults; the first rule matching a model wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[FaultRule, ...]


@dataclass(frozen=True)
class Plan:
    """What one call gets: a delay, then a fault or the normal answer."""

    latency_ms: float
    fault: FaultKind | None
    retry_after_s: float


class FaultInjector:
    """Runtime rules, the per-source call counters behind exact rates, and the shutdown signal
    that cuts short every delay and hang. One per app; safe across serving threads."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._rules: tuple[FaultRule, ...] = ()
        self._calls: Counter[Hashable] = Counter()
        self._rng = random.Random(config.seed)
        self._stopping = threading.Event()

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return self._rules

    def set_rules(self, rules: tuple[FaultRule, ...]) -> None:
        """Replace the runtime rules; every rate sequence starts again from call one."""
        with self._lock:
            self._rules = rules
            self._calls.clear()

    def plan(self, model: str, headers: Mapping[str, str]) -> Plan:
        """The plan for one call to `model`; ValueError names a malformed x-sim-* header."""
        config = self._config
        rules = self._rules
        index, rule = next(
            ((i, r) for i, r in enumerate(rules) if fnmatchcase(model, r.model)), (-1, None)
        )
        latency = _header_number(headers, LATENCY_HEADER)
        if latency is None:
            latency = _first(rule.latency_ms if rule else None, config.latency_ms)
            jitter = _first(rule.latency_jitter_ms if rule else None, config.latency_jitter_ms)
            with self._lock:
                latency += self._rng.uniform(0, jitter)
        retry_after = _first(
            _header_number(headers, RETRY_AFTER_HEADER),
            rule.retry_after_s if rule else None,
            config.retry_after_s,
        )
        header_kind = headers.get(FAULT_HEADER)
        header_rate = _header_number(headers, FAULT_RATE_HEADER, upper=1.0)
        source: Hashable
        if header_kind is not None:
            try:
                kind = FaultKind(header_kind)
            except ValueError:
                choices = ", ".join(k.value for k in FaultKind)
                raise ValueError(f"{FAULT_HEADER} must be one of {choices}") from None
            rate = 1.0 if header_rate is None else header_rate
            source = ("header", kind, rate)
        elif header_rate is not None:
            raise ValueError(f"{FAULT_RATE_HEADER} needs {FAULT_HEADER}")
        elif rule is not None and rule.kind is not None:
            kind, rate, source = rule.kind, rule.rate, ("rule", index)
        elif config.fault is not None:
            kind, rate, source = FaultKind(config.fault), config.fault_rate, ("config",)
        else:
            return Plan(latency, None, retry_after)
        return Plan(latency, kind if self._strikes(source, rate) else None, retry_after)

    def wait(self, ms: float) -> None:
        """Block the serving thread, as a provider computing its answer would."""
        if ms > 0:
            self._stopping.wait(ms / 1000)

    def hang(self) -> None:
        """Hold the call for SimConfig.hang_s, or until the server shuts down."""
        self._stopping.wait(self._config.hang_s)

    def release(self) -> None:
        """End every delay and hang now, so a stopping server is not held by its own faults."""
        self._stopping.set()

    def _strikes(self, source: Hashable, rate: float) -> bool:
        share = Fraction(rate).limit_denominator(10_000)
        with self._lock:
            self._calls[source] += 1
            calls = self._calls[source]
        return math.floor(calls * share) > math.floor((calls - 1) * share)


def _first(*values: float | None) -> float:
    """The first value that is set (a rule field of 0 counts as set)."""
    return next(v for v in values if v is not None)


def _header_number(
    headers: Mapping[str, str], name: str, *, upper: float = math.inf
) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not (0 <= value <= upper and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number within [0, {upper}], got {raw!r}")
    return value
