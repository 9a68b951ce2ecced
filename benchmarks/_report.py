"""Results: kept raw, summarised as medians with their spread and ratios to the
baseline measured in the same run, shown as tables, saved as JSON, drawn as a plot."""

from __future__ import annotations

import inspect
import json
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._implementations import BASELINE, FLOOR
from ._scenarios import METRICS, SCENARIOS, Scenario

__all__ = ["Results", "compare", "describe", "markdown", "plot", "print_summary", "print_tables"]

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


_SCENARIOS = {scenario.name: scenario for scenario in SCENARIOS}
_LITERAL = re.compile(r"``(.+?)``")
_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")  # a name, not an attribute: sleep in time.sleep(sleep)


def describe(scenario: Scenario, mode: str) -> str:
    """The first paragraph of the scenario's docstring as a reader wants it: the names of
    its size parameters filled in with the mode's values, and the reST markup dropped
    ("``tasks`` tasks, each offloading ``time.sleep(sleep)``" reads "16 tasks, each
    offloading time.sleep(0.002)")."""
    paragraph = inspect.cleandoc(scenario.measure.__doc__ or "").split("\n\n")[0]
    sizes = scenario.sizes.get(mode, {})

    def value(name: re.Match[str]) -> str:
        if name[0] not in sizes:
            return name[0]
        size = sizes[name[0]]
        return f"{size:,}" if isinstance(size, int) else f"{size:g}"

    return _LITERAL.sub(lambda literal: _NAME.sub(value, literal[1]), " ".join(paragraph.split()))


def _loop_note(results: Results, scenario: str, measured: list[str]) -> str:
    """Why a loop of the run has no column in this scenario's table, and how often it ran."""
    notes = []
    missing = [loop for loop in results.loops() if loop not in measured]
    known = _SCENARIOS.get(scenario)
    if missing:
        if known is not None and results.mode in known.loops:
            # Scenario.loops: "for the modes where not every loop is worth the time".
            child = " (a child process per measurement)" if known.subprocess else ""
            only = ", ".join(known.loops[results.mode])
            notes.append(
                f"Not measured on {', '.join(missing)}: this scenario is among the slowest{child}, so a "
                f"{results.mode} run measures it on {only} only, to save time; --full measures every loop."
            )
        else:
            notes.append(f"Not measured on {', '.join(missing)} in this run.")
    counts = {len(values) for key, values in results.values.items() if key[1] == scenario}
    if counts == {1} and results.mode != "smoke":
        notes.append(f"Measured once in a {results.mode} run, so no [min–max] spread.")
    return " ".join(notes)


def print_tables(results: Results, console: Console) -> None:
    """One table per scenario: medians [min–max] per loop, and the ratio to the baseline."""
    machine = results.machine
    console.print(
        f"[bold]{results.mode} run[/] on {machine['cpus']} CPUs ({machine['processor']}), "
        f"Python {machine['python']} ({'GIL' if machine['gil'] else 'free-threaded'}), {machine['date']}; "
        f"× is how many times better than {BASELINE} (thread_start: than {_BASELINES['thread_start']}) "
        "on the same loop, in this run"
    )
    # The rows of each scenario, (implementation, metric) in order, once whatever the loops.
    rows: dict[str, dict[tuple[str, str], None]] = defaultdict(dict)
    for _, scenario, implementation, metric in results.keys_in_order():
        rows[scenario][implementation, metric] = None
    for scenario, keys in rows.items():
        # Only the loops it was measured on: an empty column would say nothing of why.
        loops = [
            loop for loop in results.loops() if any(k[0] == loop and k[1] == scenario for k in results.values)
        ]
        known = _SCENARIOS.get(scenario)
        # Above the table, not as its title: a title wraps at the table's width.
        console.print()
        console.print(f"[bold]{scenario}[/]: {escape(describe(known, results.mode))}" if known else scenario)
        note = _loop_note(results, scenario, loops)
        if note:
            console.print(f"[italic]{escape(note)}[/]")
        table = Table()
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


# The figure the summary judges a scenario by: the first of these it measures.
HEADLINES = (
    "tick_late_p99_ms",  # responsiveness: what the loop's other tasks suffer
    "calls_per_s",  # steady
    "speedup_vs_loop",  # gil_release, cpu_bound
    "median_us",  # round_trip
    "wall_us_per_call",  # batch_*
    "burst_ms",  # bursty
    "wall_ms",  # burst
    "rss_mib",  # memory
    "wall_us_per_thread",  # thread_start
)
LOSS = 1.1  # the summary lists where offload is at least this many times worse than a peer


def _better(metric: str, mine: float, theirs: float) -> float:
    """How many times better ``mine`` is than ``theirs`` (below 1: worse); inf or 0 at a zero."""
    if METRICS[metric].lower_is_better:
        mine, theirs = theirs, mine
    if theirs == 0:
        return 1.0 if mine == 0 else math.inf
    return mine / theirs


def _ordinal(place: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(place, f"{place}th")  # no run ranks 21 implementations


def _medians(results: Results, loop: str, scenario: str, metric: str) -> dict[str, float]:
    """The median of every implementation but the floor, best first."""
    found = {
        key[2]: median
        for key in results.values
        if key[:2] == (loop, scenario)
        and key[3] == metric
        and key[2] != FLOOR
        and (median := results.median(key)) is not None
    }
    reverse = not METRICS[metric].lower_is_better
    return dict(sorted(found.items(), key=lambda item: item[1], reverse=reverse))


def _losses(results: Results, scenario: str) -> list[tuple[float, str]]:
    """Each metric where offload() is at least LOSS times worse than a peer (not offload's
    own one-line switch, not the floor), on the loop where it loses most."""
    worst: dict[str, tuple[float, str]] = {}
    for loop in results.loops():
        for metric in dict.fromkeys(k[3] for k in results.values if k[:2] == (loop, scenario)):
            medians = _medians(results, loop, scenario, metric)
            peers = {name: value for name, value in medians.items() if not name.startswith("offload")}
            if "offload" not in medians or not peers:
                continue
            best, value = next(iter(peers.items()))
            times = _better(metric, value, medians["offload"])
            if times >= LOSS and times > worst.get(metric, (0.0, ""))[0]:
                ratio = "" if math.isinf(times) else f" ({times:.2g}×)"
                worst[metric] = (
                    times,
                    f"{metric} {_number(medians['offload'])} vs {_number(value)} for {best}{ratio}",
                )
    return sorted(worst.values(), reverse=True)


def print_summary(results: Results, console: Console, most: int = 2) -> None:
    """One screen: for each scenario, on each loop, which implementation wins its headline
    figure and by how much over the next, offload's place; then where offload loses."""
    loops = results.loops()
    scenarios = list(dict.fromkeys(k[1] for k in results.keys_in_order()))
    console.print()
    console.print(
        f"[bold]Summary of the {results.mode} run[/]: each scenario's headline figure (↓ lower is better, "
        "↑ higher), medians. Winner: by how many times it beats the next. offload: its place, and how many "
        f"times the winner beats it. The floor (the least a hand-off can cost, not a library) is left out."
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("scenario (headline figure)", no_wrap=True)
    for loop in loops:
        table.add_column(f"{loop}: winner", no_wrap=True)
        table.add_column("offload", no_wrap=True)
    firsts = {name: dict.fromkeys(loops, 0) for name in ("offload", "offload.install()")}
    judged = dict.fromkeys(loops, 0)
    for scenario in scenarios:
        metrics = {k[3] for k in results.values if k[1] == scenario}
        headline = next((m for m in HEADLINES if m in metrics), None)
        if headline is None:
            continue
        cells = []
        for loop in loops:
            medians = _medians(results, loop, scenario, headline)
            if not medians:
                cells += ["not measured", ""]
                continue
            ranking = list(medians)
            winner = ranking[0]
            margin = (
                f" {_better(headline, medians[winner], medians[ranking[1]]):.2f}×" if len(ranking) > 1 else ""
            )
            cells.append(
                f"[bold]{winner}[/]{margin}" if winner.startswith("offload") else f"{winner}{margin}"
            )
            if winner in firsts:
                firsts[winner][loop] += 1
            if "offload" not in medians:
                cells.append("")
                continue
            judged[loop] += 1
            place = ranking.index("offload") + 1
            behind = _better(headline, medians[winner], medians["offload"])
            cells.append("1st" if place == 1 else f"{_ordinal(place)}, {behind:.2f}×")
        arrow = "↓" if METRICS[headline].lower_is_better else "↑"
        table.add_row(f"{scenario} ({headline} {arrow})", *cells)
    console.print(table)
    console.print(
        "; ".join(
            f"on {loop}, offload() is first in {firsts['offload'][loop]} of {judged[loop]} scenarios, "
            f"offload.install() in {firsts['offload.install()'][loop]}"
            for loop in loops
            if judged[loop]
        )
        + "."
    )
    console.print(
        f"Where offload() loses to a peer by {LOSS:g}× or more (its own one-line switch and the floor "
        "aside), on the loop where it loses most: offload's median vs the best peer's:"
    )
    where = Table.grid(padding=(0, 1))
    where.add_column(no_wrap=True)
    where.add_column()
    for scenario in scenarios:
        losses = _losses(results, scenario)
        if losses:
            more = f"; and {len(losses) - most} more" if len(losses) > most else ""
            where.add_row(f"  {scenario}:", "; ".join(text for _, text in losses[:most]) + more)
    console.print(where)


def plot(results: Results, path: Path) -> None:
    """Wall time and loop-thread CPU per call against batch size, a line per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sizes = sorted({int(k[1].split("_")[1]) for k in results.values if k[1].startswith("batch_")})
    implementations = list(dict.fromkeys(k[2] for k in results.keys_in_order() if k[1].startswith("batch_")))
    colors = {name: f"C{i}" for i, name in enumerate(implementations)}
    styles: dict[str, Literal["-", "--"]] = dict(zip(results.loops(), ("-", "--"), strict=False))
    # The legend goes below the plots, outside them, where it cannot hide a line: a colour
    # per implementation and a line style per loop, not an entry per pair.
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.6), layout="constrained")
    for axis, metric, title in zip(
        axes,
        ("wall_us_per_call", "loop_cpu_us_per_call"),
        ("wall time per call", "event loop thread CPU per call"),
        strict=True,
    ):
        for loop, style in styles.items():
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
                )
        axis.set(
            xscale="log", yscale="log", xlabel="calls gathered at once", ylabel="µs per call", title=title
        )
        axis.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=colors[name], marker="o", label=name) for name in implementations]
    handles += [
        Line2D([], [], color="grey", linestyle=style, label=f"on {loop}") for loop, style in styles.items()
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=8, frameon=False)
    machine = results.machine
    figure.suptitle(
        f"offload benchmark ({results.mode}), {machine['cpus']} CPUs, Python {machine['python']}, "
        f"{machine['date'][:10]}",
        fontsize=10,
    )
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
