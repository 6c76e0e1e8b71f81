"""PNG charts for the report (matplotlib, the ``bench`` extra): one per table, plus SIP steps.

Each table gets a bar chart of its primary metric per system (median, with
the min-max over runs as the error bar), then, beside it, latency percentiles
and CPU per message or call where the table has them. Without matplotlib the
report is written without charts and says how to get them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from bench.harness.results import Metric, ScenarioResult, Status, Table

COLOURS = {"warpd": "#1f77b4", "peer": "#ff7f0e", "other peer": "#f5b041", "limit": "#7f7f7f"}


REQUIREMENT = "matplotlib>=3.8,<4"  # pyproject.toml's bench extra


def ensure() -> None:
    """pip install matplotlib into this venv where it is missing (a full run's charts)."""
    if importlib.util.find_spec("matplotlib") is not None:
        return
    print(f"bench: pip install {REQUIREMENT} (the charts)", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT],
        check=False,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _panels(table: Table) -> list[list[Metric]]:
    primary = [m for m in table.metrics if m.primary]
    latency = [m for m in table.metrics if " p50 " in f" {m.label} " or " p99 " in f" {m.label} "]
    cpu = [m for m in table.metrics if m.label.startswith("CPU") or "per " in m.label]
    return [panel for panel in (primary, latency, cpu) if panel]


def draw(result: ScenarioResult, directory: Path) -> list[tuple[str, str]]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no charts (pip install -e '.[bench]' for matplotlib)")
        return []
    drawn = []
    (directory / "charts").mkdir(parents=True, exist_ok=True)
    for table in result.tables:
        summaries = [s for s in table.summaries() if s.status is Status.OK]
        if not summaries:
            continue
        panels = _panels(table)
        figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
        for axis, metrics in zip(axes[0], panels, strict=True):
            width = 0.8 / len(metrics)
            for index, metric in enumerate(metrics):
                shown = [s for s in summaries if metric.key in s.values]
                xs = [summaries.index(s) + index * width for s in shown]
                medians = [s.values[metric.key][0] for s in shown]
                low = [s.values[metric.key][0] - s.values[metric.key][1] for s in shown]
                high = [s.values[metric.key][2] - s.values[metric.key][0] for s in shown]
                colours = [COLOURS.get(s.role.value, "#999") for s in shown]
                axis.bar(
                    xs,
                    medians,
                    width,
                    yerr=[low, high],
                    capsize=3,
                    color=colours,
                    alpha=1.0 - 0.6 * index / len(metrics),
                    label=metric.label,
                )
            shown_values = [s.values[m.key][0] for m in metrics for s in summaries
                            if m.key in s.values and s.values[m.key][0] > 0]  # fmt: skip
            # Peers and limits differ by orders of magnitude: a log axis keeps both readable.
            if shown_values and max(shown_values) > 30 * min(shown_values):
                axis.set_yscale("log")
            axis.set_xticks([i + 0.4 - width / 2 for i in range(len(summaries))])
            axis.set_xticklabels([s.system for s in summaries], rotation=20, ha="right", fontsize=7)
            axis.set_title(", ".join(m.label for m in metrics), fontsize=8)
            axis.tick_params(axis="y", labelsize=7)
            if len(metrics) > 1:
                axis.legend(fontsize=6)
        figure.suptitle(table.title, fontsize=9)
        figure.tight_layout()
        name = f"charts/{result.name}-{_slug(table.title)}.png"
        figure.savefig(directory / name, dpi=110)
        plt.close(figure)
        drawn.append((name, table.title))
    return drawn


def line(
    directory: Path,
    name: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: dict[str, list[tuple[float, float]]],
) -> tuple[str, str] | None:
    """A line chart of (x, y) points per series (the SIP rate steps: achieved vs offered)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    (directory / "charts").mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for label, points in series.items():
        if points:
            axis.plot(*zip(*sorted(points), strict=True), marker="o", label=label)
    axis.set_xlabel(xlabel, fontsize=8)
    axis.set_ylabel(ylabel, fontsize=8)
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(directory / f"charts/{name}.png", dpi=110)
    plt.close(figure)
    return f"charts/{name}.png", title
