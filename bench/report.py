"""The bench's outputs: a readable table on stdout, results.json and summary.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.results import Comparison, Cost, ScenarioResult
from bench.stats import Spread, spread

# The targets, shown beside the figure each one is about.
TARGETS: dict[tuple[str, str, str], str] = {
    ("accept, one key", "accepted jobs/s", "bare API (a)"): "ratio >= 0.7",
    ("accept, one key", "latency p99", "bare API (a)"): "ratio <= 1.5",
    ("batch of 10,000", "jobs/s admitted", ""): ">= 10,000",
    ("completion 1 x c200", "jobs/s", "bare Celery (b)"): "ratio >= 0.8",
    ("completion 2 x c100", "jobs/s", "bare Celery (b)"): "ratio >= 0.8",
    ("idle overhead", "job row p50", ""): "<= 8 ms",
    ("priority", "high start p99", ""): "<= 1000 ms",
    ("degraded provider", "jobs/s", "healthy provider"): "ratio >= 0.6, no job failed",
}
COST_KINDS = ("api", "worker", "postgres", "redis", "sim", "client")


def number(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread_text(found: Spread | None) -> str:
    if found is None:
        return "-"
    if found.runs == 1 or found.low == found.high:
        return number(found.median)
    return f"{number(found.median)} ({number(found.low)}-{number(found.high)})"


def _ratio_text(comparison: Comparison) -> str:
    found = spread(comparison.ratios())
    return "-" if found is None else spread_text(found) + "x"


def figure_rows(results: list[ScenarioResult]) -> list[list[str]]:
    header = ["scenario", "figure", "promptq", "baseline", "baseline figure", "ratio", "target"]
    rows = [header]
    for result in results:
        for c in result.comparisons:
            target = TARGETS.get((result.name, c.label, c.baseline_name), "")
            rows.append(
                [
                    result.name,
                    f"{c.label} ({c.unit})",
                    spread_text(spread(c.promptq)),
                    c.baseline_name or "-",
                    spread_text(spread(c.baseline)),
                    _ratio_text(c) if c.baseline else "-",
                    target,
                ]
            )
    return rows


def _cost_row(result: ScenarioResult, cost: Cost) -> list[str]:
    per_1000 = cost.cpu_per_1000()
    cpu = [spread_text(per_1000.get(kind)) for kind in COST_KINDS]
    rss = "/".join(
        number(max(cost.peak_rss_mb[k])) if cost.peak_rss_mb.get(k) else "-"
        for k in ("api", "worker", "postgres", "redis")
    )
    pg = "-"
    if cost.pg_statements_per_job is not None:
        pg = f"{number(cost.pg_statements_per_job)} ({number(cost.pg_round_trips_per_job or 0)})"
    return [
        result.name,
        cost.system,
        f"{sum(cost.jobs):,}",
        *cpu,
        spread_text(cost.redis_per_job()),
        pg,
        rss,
    ]


def cost_rows(results: list[ScenarioResult]) -> list[list[str]]:
    header = ["scenario", "system", "jobs"]
    header += [f"CPU s/1k {kind}" for kind in COST_KINDS]
    header += ["Redis cmds/job", "PG stmts/job (trips)", "peak RSS MB api/worker/pg/redis"]
    rows = [header]
    for result in results:
        rows += [_cost_row(result, cost) for cost in result.costs]
    return rows


def plain_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def _meta_lines(meta: dict[str, Any]) -> list[str]:
    return [
        f"promptq {meta['git']} · {meta['date']} · {meta['mode']} · {meta['machine']} · "
        f"wall {meta['wall_s']:.0f} s",
        f"load generator: at most {meta['load_generator_cpu_share']:.2f} of one core "
        "(not the bottleneck while below 1)",
        "CPU s/1k = CPU seconds per 1,000 jobs (= CPU ms per job). PostgreSQL: the bench "
        "database's backends and the server's helpers (memory less shared pages); Redis: the "
        "whole server (CPU and commands include any other client of it).",
    ]


def write(out_dir: Path, results: list[ScenarioResult], meta: dict[str, Any]) -> str:
    """Write results.json and summary.md under `out_dir`; return the text for stdout."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "scenarios": [r.as_dict() for r in results]}
    (out_dir / "results.json").write_text(json.dumps(document, indent=2, default=str))
    figures, costs = figure_rows(results), cost_rows(results)
    summary = [
        "# promptq bench",
        "",
        *(f"- {line}" for line in _meta_lines(meta)),
        "",
        "## Figures (median (min-max) of the runs; ratio = promptq / baseline, run by run)",
        "",
        markdown_table(figures),
        "",
        "## Cost per job",
        "",
        markdown_table(costs),
        "",
    ]
    (out_dir / "summary.md").write_text("\n".join(summary))
    return "\n".join([*_meta_lines(meta), "", plain_table(figures), "", plain_table(costs), ""])
