"""One timed window's resource use: CPU and peak RSS per process kind, and Redis commands."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import psutil
import redis

from bench.measure.process_usage import ProcessUsageMeter, Selector, Usage
from bench.measure.redis_commands import command_counts, delta


@dataclass
class WindowUsage:
    processes: dict[str, Usage] = field(default_factory=dict)
    redis_commands: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@contextlib.contextmanager
def measured_window(
    groups: Mapping[str, Sequence[psutil.Process]],
    redis_client: redis.Redis,
    selectors: Mapping[str, Selector],
) -> Iterator[WindowUsage]:
    """`with measured_window(...) as usage:` fills `usage` when the block ends."""
    usage = WindowUsage()
    meter = ProcessUsageMeter(groups, selectors)
    commands_before = command_counts(redis_client)
    started = time.monotonic()
    meter.start()
    try:
        yield usage
    finally:
        usage.processes = meter.stop()
        usage.seconds = time.monotonic() - started
        usage.redis_commands = delta(commands_before, command_counts(redis_client))
