"""What a scenario reports: promptq's figures beside a baseline's, run by run, and the cost of
each system per job (CPU per process kind, peak RSS, Redis commands, Postgres statements)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.measure.window import WindowUsage
from bench.stats import Spread, pair_ratios, spread


@dataclass
class Comparison:
    """One figure of promptq's against a baseline's, run by run (runs made in adjacent pairs)."""

    label: str
    unit: str
    promptq: list[float] = field(default_factory=list)
    baseline_name: str = ""
    baseline: list[float] = field(default_factory=list)
    # Lower is better (latency): the ratio is still promptq / baseline, and says so.
    lower_is_better: bool = False

    def ratios(self) -> list[float]:
        return pair_ratios(self.promptq, self.baseline)

    def as_dict(self) -> dict[str, Any]:
        def summary(values: list[float]) -> dict[str, float] | None:
            found = spread(values)
            return found.as_dict() if found else None

        return {
            "label": self.label,
            "unit": self.unit,
            "promptq": {"runs": self.promptq, "summary": summary(self.promptq)},
            "baseline": {
                "name": self.baseline_name,
                "runs": self.baseline,
                "summary": summary(self.baseline),
            },
            "ratio": {"runs": self.ratios(), "summary": summary(self.ratios())},
            "lower_is_better": self.lower_is_better,
        }


@dataclass
class Cost:
    """What one system spent per job over a scenario's runs."""

    system: str
    jobs: list[int] = field(default_factory=list)
    cpu_s: dict[str, list[float]] = field(default_factory=dict)
    peak_rss_mb: dict[str, list[float]] = field(default_factory=dict)
    redis_commands: list[Counter[str]] = field(default_factory=list)
    # From the counting pass through the wire proxy (bench/scenarios/statement_counts.py).
    pg_statements_per_job: float | None = None
    pg_round_trips_per_job: float | None = None

    def add(self, usage: WindowUsage, jobs: int, client_cpu_s: float | None = None) -> None:
        self.jobs.append(jobs)
        for kind, figures in usage.processes.items():
            self.cpu_s.setdefault(kind, []).append(figures.cpu_s)
            self.peak_rss_mb.setdefault(kind, []).append(figures.peak_rss_mb)
        if client_cpu_s is not None:
            self.cpu_s.setdefault("client", []).append(client_cpu_s)
        self.redis_commands.append(usage.redis_commands)

    def cpu_per_1000(self) -> dict[str, Spread]:
        """CPU seconds per 1,000 jobs by process kind (equal to CPU milliseconds per job)."""
        out = {}
        for kind, seconds in self.cpu_s.items():
            per = [s / j * 1000 for s, j in zip(seconds, self.jobs, strict=False) if j]
            found = spread(per)
            if found is not None:
                out[kind] = found
        return out

    def redis_per_job(self) -> Spread | None:
        per = [sum(c.values()) / j for c, j in zip(self.redis_commands, self.jobs, strict=False)]
        return spread([p for p, j in zip(per, self.jobs, strict=False) if j])

    def top_redis_commands(self, n: int = 6) -> list[tuple[str, float]]:
        total: Counter[str] = Counter()
        for commands in self.redis_commands:
            total.update(commands)
        jobs = max(sum(self.jobs), 1)
        return [(name, count / jobs) for name, count in total.most_common(n)]

    def as_dict(self) -> dict[str, Any]:
        redis_spread = self.redis_per_job()
        return {
            "system": self.system,
            "jobs": self.jobs,
            "cpu_s": self.cpu_s,
            "cpu_s_per_1000_jobs": {k: v.as_dict() for k, v in self.cpu_per_1000().items()},
            "peak_rss_mb": {k: max(v) for k, v in self.peak_rss_mb.items() if v},
            "redis_commands_per_job": redis_spread.as_dict() if redis_spread else None,
            "top_redis_commands_per_job": dict(self.top_redis_commands()),
            "pg_statements_per_job": self.pg_statements_per_job,
            "pg_round_trips_per_job": self.pg_round_trips_per_job,
        }


@dataclass
class ScenarioResult:
    """A scenario's comparisons, its systems' costs, and whatever else a reader needs."""

    name: str
    description: str
    comparisons: list[Comparison] = field(default_factory=list)
    costs: list[Cost] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # Which counting-pass figure its promptq cost row shows: "accept", "batch" or "complete".
    statement_kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "costs": [c.as_dict() for c in self.costs],
            "details": self.details,
        }
