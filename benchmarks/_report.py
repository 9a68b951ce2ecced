"""Results: kept raw, summarised as medians with their spread and ratios to the
baseline measured in the same run, shown as tables, saved as JSON, drawn as a plot."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ._implementations import BASELINE, FLOOR
from ._scenarios import METRICS, SCENARIOS

__all__ = ["Results", "compare", "markdown", "plot", "print_tables"]

Key = tuple[str, str, str, str]  # loop, scenario, implementation, metric

_BASELINES = {scenario.name: scenario.baseline for scenario in SCENARIOS}


@dataclass
class Results:
    mode: str
    machine: dict[str, Any]
    values: dict[Key, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, loop: str, scenario: str, implementation: str, metrics: dict[str, float]) -> None:
        for metric, value in metrics.items():
            self.values[loop, scenario, implementation, metric].append(value)

    def median(self, key: Key) -> float | None:
        values = self.values.get(key)
        return statistics.median(values) if values else None

    def ratio(self, key: Key, against: str | None = None) -> float | None:
        """How many times better than ``against`` (by default the scenario's baseline;
        or the floor); above 1 means better."""
        loop, scenario, _, metric = key
        against = against or _BASELINES.get(scenario, BASELINE)
        mine, theirs = self.median(key), self.median((loop, scenario, against, metric))
        if not mine or not theirs:
            return None
        return theirs / mine if METRICS[metric].lower_is_better else mine / theirs

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "machine": self.machine,
            "baseline": BASELINE,
            "results": [
                {
                    "loop": loop,
                    "scenario": scenario,
                    "implementation": implementation,
                    "metric": metric,
                    "unit": METRICS[metric].unit,
                    "lower_is_better": METRICS[metric].lower_is_better,
                    "values": values,
                    "median": statistics.median(values),
                    "ratio_vs_baseline": self.ratio((loop, scenario, implementation, metric)),
                    "ratio_vs_floor": self.ratio((loop, scenario, implementation, metric), FLOOR),
                }
                for (loop, scenario, implementation, metric), values in self.values.items()
            ],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        results = cls(data["mode"], data["machine"])
        for row in data["results"]:
            key = (row["loop"], row["scenario"], row["implementation"], row["metric"])
            results.values[key] = row["values"]
        return results

    def keys_in_order(self) -> list[Key]:
        order = {s.name: i for i, s in enumerate(SCENARIOS)}
        return sorted(self.values, key=lambda k: (order.get(k[1], 99), k[1], k[3], k[2], k[0]))

    def loops(self) -> list[str]:
        return list(dict.fromkeys(k[0] for k in self.keys_in_order()))


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _cell(results: Results, key: Key) -> tuple[str, str]:
    values = results.values.get(key)
    if not values:
        return "", ""
    spread = f" [{_number(min(values))}–{_number(max(values))}]" if len(values) > 1 else ""
    ratio = results.ratio(key)
    return f"{_number(statistics.median(values))}{spread}", "" if ratio is None else f"{ratio:.2f}×"


def print_tables(results: Results, console: Console) -> None:
    """One table per scenario: medians [min–max] per loop, and the ratio to the baseline."""
    machine = results.machine
    console.print(
        f"[bold]{results.mode} run[/] on {machine['cpus']} CPUs ({machine['processor']}), "
        f"Python {machine['python']} ({'GIL' if machine['gil'] else 'free-threaded'}), {machine['date']}; "
        f"× is how many times better than {BASELINE} (thread_start: than {_BASELINES['thread_start']}) "
        "on the same loop, in this run"
    )
    loops = results.loops()
    descriptions = {s.name: s.description for s in SCENARIOS}
    # The rows of each scenario, (implementation, metric) in order, once whatever the loops.
    rows: dict[str, dict[tuple[str, str], None]] = defaultdict(dict)
    for _, scenario, implementation, metric in results.keys_in_order():
        rows[scenario][implementation, metric] = None
    for scenario, keys in rows.items():
        table = Table(title=f"{scenario}: {descriptions.get(scenario, '')}", title_justify="left")
        table.add_column("metric")
        table.add_column("implementation")
        for loop in loops:
            table.add_column(loop, justify="right")
            table.add_column("×", justify="right")
        for implementation, metric in keys:
            cells: list[str] = []
            for loop in loops:
                cells.extend(_cell(results, (loop, scenario, implementation, metric)))
            label = f"{metric} ({METRICS[metric].unit})"
            style = "bold" if implementation == "offload" else None
            table.add_row(label, implementation, *cells, style=style)
        console.print(table)


def plot(results: Results, path: Path) -> None:
    """Wall time and loop-thread CPU per call against batch size, a line per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({int(k[1].split("_")[1]) for k in results.values if k[1].startswith("batch_")})
    implementations = list(dict.fromkeys(k[2] for k in results.keys_in_order()))
    colors = {name: f"C{i}" for i, name in enumerate(implementations)}
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for axis, metric, title in zip(
        axes,
        ("wall_us_per_call", "loop_cpu_us_per_call"),
        ("wall time per call", "event loop thread CPU per call"),
        strict=True,
    ):
        for loop, style in zip(results.loops(), ("-", "--"), strict=False):
            for implementation in implementations:
                points = [
                    (size, results.median((loop, f"batch_{size}", implementation, metric))) for size in sizes
                ]
                xs = [x for x, y in points if y is not None]
                ys = [y for _, y in points if y is not None]
                axis.plot(
                    xs,
                    ys,
                    style,
                    color=colors[implementation],
                    marker="o",
                    label=f"{implementation} ({loop})",
                )
        axis.set(
            xscale="log", yscale="log", xlabel="calls gathered at once", ylabel="µs per call", title=title
        )
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    machine = results.machine
    figure.suptitle(
        f"offload benchmark ({results.mode}), {machine['cpus']} CPUs, Python {machine['python']}, "
        f"{machine['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def compare(before: Results, after: Results, console: Console) -> None:
    """Two saved runs side by side: medians and after/before for every figure in both."""
    table = Table(title="after / before: below 1 is lower (better for times, worse for speed-ups)")
    for column in ("loop", "scenario", "implementation", "metric", "before", "after", "after/before"):
        table.add_column(column, justify="right" if column in ("before", "after", "after/before") else "left")
    for key in before.keys_in_order():
        a, b = before.median(key), after.median(key)
        if a is None or b is None:
            continue
        table.add_row(*key, _number(a), _number(b), f"{b / a:.2f}" if a else "")
    console.print(table)


def markdown(results: Results) -> str:
    """A Markdown table of every median, with its ratio to the baseline, for the docs."""
    implementations = list(dict.fromkeys(k[2] for k in results.keys_in_order()))
    header = ["loop", "scenario", "metric", *implementations]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = dict.fromkeys((k[0], k[1], k[3]) for k in results.keys_in_order())
    loops = results.loops()
    for loop, scenario, metric in sorted(rows, key=lambda row: loops.index(row[0])):
        cells = []
        for implementation in implementations:
            key = (loop, scenario, implementation, metric)
            median, ratio = results.median(key), results.ratio(key)
            cell = "" if median is None else _number(median)
            if ratio is not None and implementation != _BASELINES.get(scenario, BASELINE):
                cell += f" ({ratio:.2f}×)"
            cells.append(cell)
        lines.append(
            f"| {loop} | {scenario} | {metric} ({METRICS[metric].unit}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
