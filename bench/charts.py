"""PNG charts of a bench run (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.results import ScenarioResult
from bench.stats import spread


def _completion_chart(results: list[ScenarioResult], path: Path) -> None:
    shapes = [r for r in results if r.name.startswith("completion ")]
    if not shapes:
        return
    labels = [r.name.removeprefix("completion ") for r in shapes]
    series = {
        "promptq": [spread(r.comparisons[0].promptq) for r in shapes],
        "bare Celery (b)": [spread(r.comparisons[0].baseline) for r in shapes],
        "openai SDK loop (c)": [spread(r.comparisons[1].baseline) for r in shapes],
    }
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.27
    for i, (name, spreads) in enumerate(series.items()):
        xs = [n + (i - 1) * width for n in range(len(shapes))]
        medians = [s.median if s else 0 for s in spreads]
        errors = [
            [s.median - s.low if s else 0 for s in spreads],
            [s.high - s.median if s else 0 for s in spreads],
        ]
        axes.bar(xs, medians, width, yerr=errors, capsize=3, label=name)
    ideal = [int(label.split(" x c")[0]) * int(label.split(" x c")[1]) for label in labels]
    axes.plot(range(len(shapes)), ideal, "k_", markersize=30, label="ideal (slots / 1 s)")
    axes.set_xticks(range(len(shapes)), labels)
    axes.set_xlabel("workers x concurrency")
    axes.set_ylabel("jobs/s (median, min-max)")
    axes.set_title("Completion throughput against concurrency, 1 s provider latency")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _sweep_charts(results: list[ScenarioResult], out_dir: Path) -> None:
    sweep = next((r for r in results if r.name == "accept load sweep"), None)
    if sweep is None or not sweep.details.get("points"):
        return
    points = sweep.details["points"]
    connections = [p["connections"] for p in points]
    # Offered load (connections) on x: past saturation the achieved rate stops moving and
    # only latency grows, which a rate axis would fold onto one point.
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for system, style in (("promptq", "-o"), ("bare", "--s")):
        for q in ("p50", "p90", "p99"):
            latencies = [p[system]["latency_ms"][q] for p in points]
            axes.plot(connections, latencies, style, label=f"{system} {q}")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("connections (load offered)")
    axes.set_ylabel("latency ms (log)")
    axes.set_yscale("log")
    axes.set_title("Accept latency percentiles against load")
    axes.legend(ncol=2, fontsize="small")
    figure.tight_layout()
    figure.savefig(out_dir / "accept_latency_vs_load.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for system, label in (("promptq", "promptq"), ("bare", "bare API (a)")):
        axes.plot(connections, [p[system]["rps"] for p in points], "-o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("connections")
    axes.set_ylabel("accepted jobs/s")
    axes.set_title("Accept throughput against concurrency")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out_dir / "accept_throughput_vs_connections.png", dpi=110)
    plt.close(figure)


def write_charts(results: list[ScenarioResult], out_dir: Path) -> list[Path]:
    """Draw every chart the results have data for; the files written."""
    _completion_chart(results, out_dir / "completion_throughput_vs_concurrency.png")
    _sweep_charts(results, out_dir)
    return sorted(out_dir.glob("*.png"))
