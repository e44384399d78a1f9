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
    ("semantic cache", "lookup p99", ""): "<= 20 ms",
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
        "## This run as a row of bench/README.md's before/after table",
        "",
        BEFORE_AFTER_HEADER,
        BEFORE_AFTER_RULE,
        before_after_row(results, meta["git"]),
        "",
    ]
    (out_dir / "summary.md").write_text("\n".join(summary))
    tables = [plain_table(figures), "", plain_table(costs), ""]
    row = [
        "before/after row (bench/README.md):",
        BEFORE_AFTER_HEADER,
        BEFORE_AFTER_RULE,
        before_after_row(results, meta["git"]),
    ]
    return "\n".join([*_meta_lines(meta), "", *tables, "", *row])


BEFORE_AFTER_HEADER = (
    "| code | accept 1 key jobs/s (x bare) | accept p99 ms (x bare) | API CPU ms/job (bare) "
    "| batch jobs/s | 1 x c64 jobs/s (x bare) | 1 x c200 (x bare) | 2 x c100 (x bare) "
    "| worker CPU ms/job | idle p50 ms | priority p99 ms | degraded (x healthy) "
    "| PG stmts per accepted / completed job | Redis cmds per accepted job |"
)
BEFORE_AFTER_RULE = "|" + "---|" * (BEFORE_AFTER_HEADER.count("|") - 1)


def _find(results: list[ScenarioResult], prefix: str) -> ScenarioResult | None:
    return next((r for r in results if r.name.startswith(prefix)), None)


def _median(values: list[float]) -> float:
    found = spread(values)
    return found.median if found else math.nan


def _with_ratio(comparison: Comparison) -> str:
    return f"{number(_median(comparison.promptq))} ({number(_median(comparison.ratios()))}x)"


def _cpu(result: ScenarioResult | None, system: str, kind: str) -> float:
    cost = next((c for c in (result.costs if result else []) if c.system == system), None)
    found = cost.cpu_per_1000().get(kind) if cost else None
    return found.median if found else math.nan


def before_after_row(results: list[ScenarioResult], label: str) -> str:
    """This run as one row of bench/README.md's before/after table."""
    cells = [label]
    accept = _find(results, "accept, one key")
    if accept:
        cells += [_with_ratio(accept.comparisons[0]), _with_ratio(accept.comparisons[2])]
        api, bare = _cpu(accept, "promptq", "api"), _cpu(accept, "bare API (a)", "api")
        cells.append(f"{number(api)} ({number(bare)})")
    else:
        cells += ["-"] * 3
    found = _find(results, "batch of")
    cells.append(number(_median(found.comparisons[0].promptq)) if found else "-")
    for shape in ("1 x c64", "1 x c200", "2 x c100"):
        found = _find(results, f"completion {shape}")
        cells.append(_with_ratio(found.comparisons[0]) if found else "-")
    cells.append(number(_cpu(_find(results, "completion 1 x c200"), "promptq", "worker")))
    found = _find(results, "idle overhead")
    cells.append(number(_median(found.comparisons[0].promptq)) if found else "-")
    found = _find(results, "priority")
    cells.append(number(_median(found.comparisons[1].promptq)) if found else "-")
    found = _find(results, "degraded provider")
    if found:
        failed = sum(found.details.get("failed", []))
        cells.append(f"{number(_median(found.comparisons[0].ratios()))}x, {failed} failed")
    else:
        cells.append("-")
    found = _find(results, "Postgres statements")
    if found:
        per = found.details["per_job"]
        cells.append(
            f"{number(per['accept']['statements'])} / {number(per['complete']['statements'])}"
        )
    else:
        cells.append("-")
    cost = accept.costs[0].redis_per_job() if accept else None
    cells.append(number(cost.median) if cost else "-")
    return "| " + " | ".join(cells) + " |"
