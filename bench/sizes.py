"""How big each scenario runs: the standard set (`make bench`, at most 15 minutes on the 2-core
machine) and the quick one (`make bench-quick`, at most 3 minutes: same scenarios, smaller).

Completion runs are sized in waves of the shape's total concurrency (a wave: every slot busy for
one 1 s call), the same for promptq and both baselines, so each system's rate is taken over the
same number of waves. The issue's 5,000 jobs per run at three shapes, three systems and three
runs would take about 25 minutes alone; `--completion-jobs 5000` runs that size when wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

# (worker processes, concurrency each)
SHAPES: tuple[tuple[int, int], ...] = ((1, 64), (1, 200), (2, 100))


@dataclass(frozen=True)
class Sizes:
    runs: int
    accept_seconds: float
    accept_connections: int
    # Connection counts of the load sweep behind the latency chart; empty: no sweep.
    sweep_connections: tuple[int, ...]
    batch_jobs: int
    batch_runs: int
    completion_waves: int
    completion_runs: int
    idle_jobs: int
    idle_runs: int
    priority_low_jobs: int
    priority_high_jobs: int
    priority_runs: int
    degraded_waves: int
    degraded_runs: int
    counting_jobs: int
    # Fair dispatch (bench/scenarios/fairness.py, deep_backlog.py).
    fair_heavy_jobs: int
    fair_light_jobs: int
    fair_spread_s: float
    fair_alone_jobs: int
    fair_capped_jobs: int
    fair_runs: int
    deep_backlog_jobs: int
    # Entries in the one scope the semantic cache's lookups search.
    semantic_cache_entries: int
    # Jobs per completion run instead of waves, when set (--completion-jobs).
    completion_jobs: int | None = None

    def completion_size(self, workers: int, concurrency: int) -> int:
        return self.completion_jobs or self.completion_waves * workers * concurrency


STANDARD = Sizes(
    runs=3,
    accept_seconds=6.0,
    accept_connections=64,
    sweep_connections=(4, 16, 64, 128),
    batch_jobs=10_000,
    batch_runs=3,
    completion_waves=5,
    completion_runs=3,
    idle_jobs=200,
    idle_runs=3,
    priority_low_jobs=20_000,
    priority_high_jobs=100,
    priority_runs=3,
    degraded_waves=4,
    degraded_runs=3,
    counting_jobs=200,
    fair_heavy_jobs=10_000,
    fair_light_jobs=100,
    fair_spread_s=20.0,
    fair_alone_jobs=1_500,
    fair_capped_jobs=150,
    fair_runs=2,
    deep_backlog_jobs=1_000_000,
    semantic_cache_entries=100_000,
)

QUICK = Sizes(
    runs=2,
    accept_seconds=2.5,
    accept_connections=64,
    sweep_connections=(),
    batch_jobs=5_000,
    batch_runs=2,
    completion_waves=2,
    completion_runs=1,
    idle_jobs=50,
    idle_runs=1,
    priority_low_jobs=2_000,
    priority_high_jobs=100,
    priority_runs=1,
    degraded_waves=2,
    degraded_runs=1,
    counting_jobs=50,
    fair_heavy_jobs=2_000,
    fair_light_jobs=40,
    fair_spread_s=8.0,
    fair_alone_jobs=600,
    fair_capped_jobs=60,
    fair_runs=1,
    deep_backlog_jobs=100_000,
    semantic_cache_entries=20_000,
)
