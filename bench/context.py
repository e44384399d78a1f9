"""What every scenario gets: the running stack, the sizes, where to write, what to profile."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.measure.window import WindowUsage, measured_window
from bench.services import bench_postgres_processes
from bench.sizes import Sizes
from bench.stack import BenchStack
from devstack.processes import ManagedProcess


@dataclass
class BenchContext:
    stack: BenchStack
    sizes: Sizes
    out_dir: Path
    # "accept" or "worker": which process py-spy records in one extra run.
    profile: str | None = None

    @property
    def profile_dir(self) -> Path:
        return self.out_dir / "profiles"

    def window(
        self, system: Sequence[ManagedProcess], kind: str, **more: Sequence[ManagedProcess]
    ) -> AbstractContextManager[WindowUsage]:
        """A measured window over `system` (as `kind`), the `more` kinds, and the shared
        servers (PostgreSQL, Redis, the simulator)."""
        groups = self.stack.groups(system, kind)
        for extra_kind, processes in more.items():
            groups.update(self.stack.groups(processes, extra_kind))
        return measured_window(
            groups,
            redis.Redis.from_url(self.stack.promptq_redis_url),
            {"postgres": bench_postgres_processes},
        )
