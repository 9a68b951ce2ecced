"""Charts of a saved run, for the documentation: made from the committed JSON, never by hand.

The documentation site draws them as SVG when it is built (docs/hooks/tables.py asks
for them by name, from ``CHARTS`` and ``web_chart``). The README cannot run code, so
its one chart is a committed PNG; after the JSON changes, make it again with::

    .venv/bin/python -m benchmarks.charts  # writes docs/img/offload-vs-peers.png

Every chart draws what the run holds: an implementation or a scenario the run lacks
(``floor``, ``thread_start``) is left out, not drawn empty. Each bar says its value and,
beside the baseline, how many times better it is (below 1: worse), so that a loss reads
as plainly as a win. The figures are narrow, one column of panels, so that a phone
(390 px) shows them at a readable size.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._implementations import BASELINE
from ._report import Results
from ._scenarios import METRICS, SCENARIOS

__all__ = ["CHARTS", "headline_chart", "main", "web_chart"]

ROOT = Path(__file__).resolve().parent.parent
FULL_RUN = ROOT / "docs" / "benchmark-full.json"
WEB_RUN = ROOT / "docs" / "benchmark-web.json"
README_CHART = ROOT / "docs" / "img" / "offload-vs-peers.png"

# One colour per implementation, the same in every chart (Okabe and Ito's palette, which
# colour-blind readers can tell apart); offload's two are the blues.
COLORS = {
    "offload": "#0072B2",
    "offload.install()": "#56B4E9",
    BASELINE: "#E69F00",
    "anyio.to_thread": "#009E73",
    "run_in_executor(None)": "#CC79A7",
    "ThreadPoolExecutor(64)": "#D55E00",
    "floor": "#555555",
    "_thread.start_new_thread": "#999999",
    "Thread.start()": "#882255",
    # The web run's modes.
    "anyio": "#009E73",
    "anyio-400": "#8FD1B9",
}
ORDER = list(COLORS)
BASELINES = {scenario.name: scenario.baseline for scenario in SCENARIOS}
WIDTH = 6.4  # inches: about 600 px wide, scaled down to a phone's column
FONT = 11


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": FONT,
            "axes.titlesize": FONT + 1,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "offload",  # the same SVG for the same figures, build after build
            "svg.fonttype": "path",  # no font needed where it is shown
        }
    )
    return plt


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ordered(names: Sequence[str]) -> list[str]:
    return sorted(dict.fromkeys(names), key=lambda name: (ORDER.index(name) if name in ORDER else 99, name))


def _color(name: str) -> str:
    return COLORS.get(name, "#777777")


def _direction(metric: str) -> str:
    return "lower is better" if METRICS[metric].lower_is_better else "higher is better"


def _title(axis: Any, title: str) -> None:
    # From the figure's left edge, not the axes': the bars' labels take the space between.
    axis.annotate(
        title,
        xy=(0.01, 1),
        xycoords=("figure fraction", "axes fraction"),
        xytext=(0, 8),
        textcoords="offset points",
        fontsize=FONT + 1,
        fontweight="bold",
        va="bottom",
    )


def _x_ticks(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(5))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _number(value) if value else "0"))
    axis.tick_params(axis="x", labelsize=FONT - 1)
    axis.grid(True, axis="x", alpha=0.3)


Panel = tuple[str, str, str]  # scenario, metric, title


def _bars(results: Results, panels: Sequence[Panel], note: str = "") -> Any:
    """One panel per (scenario, metric): a bar per implementation and loop, each labelled
    with its median and its ratio to the baseline on the same loop."""
    plt = _pyplot()
    loops = results.loops()
    present = [
        panel for panel in panels if any(key[1] == panel[0] and key[3] == panel[1] for key in results.values)
    ]
    if not present:
        return None
    rows = {
        panel: _ordered([key[2] for key in results.values if key[1] == panel[0] and key[3] == panel[1]])
        for panel in present
    }
    step = len(loops) + 1.2  # a group: its name above, then a bar per loop
    heights = [len(rows[panel]) * step * 0.3 + 0.9 for panel in present]
    figure, axes = plt.subplots(
        len(present),
        1,
        figsize=(WIDTH, sum(heights) + 0.2 + 0.25 * (note.count("\n") + 1 if note else 0)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for axis, panel in zip(axes[:, 0], present, strict=True):
        scenario, metric, title = panel
        names = rows[panel]
        peak = max(
            (results.median((loop, scenario, name, metric)) or 0.0 for loop in loops for name in names),
            default=1.0,
        )
        labels, positions = [], []
        for i, name in enumerate(names):
            top = i * step + 1.2
            # The implementation's name over its bars, from the axes' left edge, so that
            # the tick labels stay short (the loops) and the bars get the width.
            axis.text(0, top - 0.85, name, fontsize=FONT + 1, fontweight="bold", color="#333333", va="center")
            for j, loop in enumerate(loops):
                y = top + j
                median = results.median((loop, scenario, name, metric))
                if median is None:
                    continue
                shade = 1.0 if j == 0 else 0.55
                axis.barh(y, median, height=0.8, color=_color(name), alpha=shade, edgecolor="white")
                text = _number(median)
                ratio = results.ratio((loop, scenario, name, metric))
                if ratio is not None and name != BASELINES.get(scenario, BASELINE):
                    text += f"  ({ratio:.2f}×)"
                axis.text(median + peak * 0.01, y, text, va="center", fontsize=FONT)
                labels.append(loop)
                positions.append(y)
        axis.set_yticks(positions, labels, fontsize=FONT)
        axis.set_ylim(len(names) * step + 0.1, -0.1)
        axis.set_xlim(0, peak * 1.45)
        _title(axis, title)
        axis.set_xlabel(f"{METRICS[metric].unit}, {_direction(metric)}", fontsize=FONT)
        _x_ticks(axis)
    if note:
        figure.text(0.01, 0.005, note, fontsize=FONT - 2, color="#555555", va="bottom")
    lines = note.count("\n") + 1 if note else 0
    figure.tight_layout(rect=(0, 0.22 * lines / figure.get_figheight(), 1, 1))
    return figure


def _ratio_note() -> str:
    return f"(×): times better than {BASELINE} on the same loop; below 1, worse"


def burst_chart(results: Results) -> Any:
    return _bars(
        results,
        [
            ("burst", "wall_ms", "200 calls of sleep(50 ms) at once: until all finish"),
            ("burst", "peak_threads", "200 calls at once: threads at the peak"),
            ("burst", "threads_after_1s", "200 calls at once: threads 1 s later"),
        ],
        _ratio_note(),
    )


STEADY = [
    ("steady_4x0ms", "4 tasks × no-op"),
    ("steady_16x0.5ms", "16 tasks × sleep(0.5 ms)"),
    ("steady_16x2ms", "16 tasks × sleep(2 ms)"),
    ("steady_64x5ms", "64 tasks × sleep(5 ms)"),
]


def steady_throughput_chart(results: Results) -> Any:
    return _bars(
        results,
        [(scenario, "calls_per_s", f"{label}: calls per second") for scenario, label in STEADY],
        _ratio_note(),
    )


def steady_cpu_chart(results: Results) -> Any:
    return _bars(
        results,
        [(scenario, "process_cpu_us_per_call", f"{label}: CPU per call") for scenario, label in STEADY],
        _ratio_note(),
    )


def bursty_chart(results: Results) -> Any:
    return _bars(
        results,
        [
            ("bursty", "burst_ms", "bursts of 20 × 2 ms calls: median burst"),
            ("bursty", "threads_created", "bursts of 20 × 2 ms calls: threads created"),
            ("bursty", "process_cpu_us_per_call", "bursts of 20 × 2 ms calls: CPU per call"),
        ],
        _ratio_note(),
    )


def memory_chart(results: Results) -> Any:
    return _bars(
        results,
        [
            ("memory", "rss_mib", "10,000 calls blocked at once: memory growth"),
            ("memory", "peak_threads", "10,000 calls blocked at once: threads at the peak"),
        ],
        _ratio_note(),
    )


def per_call_chart(results: Results) -> Any:
    return _bars(
        results,
        [
            ("round_trip", "median_us", "one call after another: latency"),
            ("round_trip", "loop_cpu_us_per_call", "one call after another: the loop thread's CPU"),
            ("batch_10000", "wall_us_per_call", "10,000 no-ops gathered: wall time per call"),
            ("batch_10000", "loop_cpu_us_per_call", "10,000 no-ops gathered: the loop thread's CPU"),
            ("thread_start", "wall_us_per_thread", "a thread started and retired: wall time"),
            ("thread_start", "process_cpu_us_per_thread", "a thread started and retired: CPU"),
        ],
        _ratio_note() + "\n(thread_start: times better than a raw thread start)",
    )


def batch_chart(results: Results) -> Any:
    """Wall time and loop-thread CPU per call against how many calls are gathered at once."""
    plt = _pyplot()
    sizes = sorted({int(key[1].split("_")[1]) for key in results.values if key[1].startswith("batch_")})
    if not sizes:
        return None
    from matplotlib.ticker import FuncFormatter, NullFormatter

    names = _ordered([key[2] for key in results.values if key[1].startswith("batch_")])
    loops = results.loops()
    figure, axes = plt.subplots(2, 1, figsize=(WIDTH, 8.4))
    for axis, metric, title in zip(
        axes,
        ("wall_us_per_call", "loop_cpu_us_per_call"),
        ("calls gathered at once: wall time per call", "calls gathered at once: the loop thread's CPU"),
        strict=True,
    ):
        for loop, style in zip(loops, ("-", "--", ":"), strict=False):
            for name in names:
                points = [(size, results.median((loop, f"batch_{size}", name, metric))) for size in sizes]
                xs = [x for x, y in points if y is not None]
                ys = [y for _, y in points if y is not None]
                if xs:
                    axis.plot(xs, ys, style, color=_color(name), marker="o", label=f"{name}, {loop}")
        axis.set(
            xscale="log", yscale="log", xlabel="calls gathered at once", ylabel="µs per call, lower is better"
        )
        _title(axis, title)
        axis.grid(True, which="both", alpha=0.3)
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=FONT - 2, frameon=False)
    figure.tight_layout(rect=(0, 0.03 + 0.025 * len(names) * len(loops) / 2, 1, 1))
    return figure


def headline_chart(results: Results, loop: str = "asyncio") -> Any:
    """The first chart a reader sees: offload and anyio as times better than
    ``asyncio.to_thread``, one row per figure, losses to the left of 1."""
    plt = _pyplot()
    rows = [
        ("round_trip", "median_us", "one call after another: latency"),
        ("batch_10000", "wall_us_per_call", "10,000 no-ops at once: time per call"),
        ("burst", "wall_ms", "200 × sleep(50 ms) at once: until all finish"),
        ("steady_4x0ms", "calls_per_s", "4 tasks × no-op: calls per second"),
        ("steady_64x5ms", "calls_per_s", "64 tasks × sleep(5 ms): calls per second"),
        ("memory", "rss_mib", "10,000 calls blocked at once: memory"),
        ("bursty", "burst_ms", "bursts of 20 × 2 ms, 20 ms apart: burst time"),
        ("bursty", "process_cpu_us_per_call", "bursts of 20 × 2 ms: CPU per call"),
        ("bursty", "threads_created", "bursts of 20 × 2 ms: threads started"),
    ]
    names = ["offload", "anyio.to_thread"]
    drawn = [row for row in rows if any(results.ratio((loop, row[0], name, row[1])) for name in names)]
    figure, axis = plt.subplots(figsize=(WIDTH, 0.8 * len(drawn) + 1.4))
    step = len(names) * 0.34 + 0.55
    for i, (scenario, metric, label) in enumerate(drawn):
        top = i * step
        axis.text(
            0.012, top - 0.02, label, fontsize=FONT + 2, va="bottom", transform=axis.get_yaxis_transform()
        )
        for j, name in enumerate(names):
            ratio = results.ratio((loop, scenario, name, metric))
            if ratio is None:
                continue
            y = top + 0.2 + j * 0.34
            axis.barh(y, abs(ratio - 1), left=min(ratio, 1), height=0.3, color=_color(name), log=True)
            x, align = (ratio * 1.06, "left") if ratio >= 1 else (ratio / 1.06, "right")
            axis.text(x, y, f"{ratio:.2g}×", va="center", ha=align, fontsize=FONT + 1)
    axis.set_xscale("log")
    axis.axvline(1, color="#333333", linewidth=1)
    axis.set_xlim(0.005, 60)
    axis.set_xticks([0.01, 0.1, 1, 10], ["0.01×", "0.1×", "1×", "10×"], fontsize=FONT + 1)
    axis.set_yticks([])
    axis.set_ylim(len(drawn) * step - 0.2, -0.55)
    axis.spines["left"].set_visible(False)
    axis.set_xlabel(f"times better than {BASELINE} (1×); left of the line: worse", fontsize=FONT - 1)
    from matplotlib.patches import Patch

    handles = [Patch(color=_color(name), label=name) for name in names]
    # Lower right: the last rows are offload's losses, drawn to the left of the line.
    axis.legend(handles=handles, loc="lower right", fontsize=FONT + 1, frameon=False)
    machine = results.machine
    axis.set_title(
        f"offload and anyio against {BASELINE} ({loop} loop)", pad=8, fontsize=FONT + 1, loc="left"
    )
    figure.text(
        0.01,
        0.005,
        f"python -m benchmarks --full, {machine['date'][:10]}, {machine['cpus']} CPUs, "
        f"{machine['implementation']} {machine['python']}; medians",
        fontsize=FONT - 2,
        color="#555555",
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure


def web_chart(data: dict[str, Any]) -> Any:
    """The FastAPI run: requests per second and threads left 2 s after, per client count."""
    plt = _pyplot()
    medians = {
        (row["loop"], row["clients"], row["mode"], row["metric"]): statistics.median(row["values"])
        for row in data["results"]
    }
    loops = list(dict.fromkeys(key[0] for key in medians))
    clients = sorted({key[1] for key in medians})
    modes = _ordered([key[2] for key in medians])
    labels = {"anyio": "anyio as shipped", "anyio-400": "anyio, 400 tokens", "offload": "offload"}
    figure, axes = plt.subplots(2, 1, figsize=(WIDTH, 8.2))
    for axis, metric, title, unit in (
        (axes[0], "requests_per_s", "FastAPI def endpoint: requests per second", "higher is better"),
        (axes[1], "threads_after", "threads left 2 s after the load", "lower is better"),
    ):
        groups = [(loop, n) for loop in loops for n in clients]
        width = 0.8 / len(modes)
        peak = max(medians.get((loop, n, mode, metric), 0.0) for loop, n in groups for mode in modes)
        for k, mode in enumerate(modes):
            for g, (loop, n) in enumerate(groups):
                value = medians.get((loop, n, mode, metric))
                if value is None:
                    continue
                y = g + (k - (len(modes) - 1) / 2) * width
                axis.barh(
                    y,
                    value,
                    height=width * 0.9,
                    color=_color(mode),
                    label=labels.get(mode, mode) if g == 0 else None,
                )
                text = _number(value)
                base = medians.get((loop, n, "anyio", metric))
                if mode != "anyio" and base and metric == "requests_per_s":
                    text += f"  ({value / base:.2f}×)"
                axis.text(value + peak * 0.01, y, text, va="center", fontsize=FONT - 2)
        axis.set_yticks(range(len(groups)), [f"{n} clients, {loop}" for loop, n in groups], fontsize=FONT - 1)
        axis.invert_yaxis()
        axis.set_xlim(0, peak * 1.35)
        _title(axis, title)
        axis.set_xlabel(unit, fontsize=FONT - 1)
        _x_ticks(axis)
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.4, -0.13), ncol=3, fontsize=FONT - 2, frameon=False)
    figure.text(0.01, 0.005, "(×): times anyio as shipped", fontsize=FONT - 2, color="#555555")
    figure.tight_layout(rect=(0, 0.02, 1, 1))
    return figure


#: The charts of the full run, by the name a page asks for them.
CHARTS: dict[str, Callable[[Results], Any]] = {
    "headline": headline_chart,
    "per-call": per_call_chart,
    "batch": batch_chart,
    "burst": burst_chart,
    "steady-throughput": steady_throughput_chart,
    "steady-cpu": steady_cpu_chart,
    "bursty": bursty_chart,
    "memory": memory_chart,
}


def to_svg(figure: Any) -> str:
    """The figure as SVG text, without the date that would change it on every build."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    _pyplot().close(figure)
    return buffer.getvalue()


def main(argv: Sequence[str] = ()) -> None:
    """Writes the README's chart from the committed full run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.charts", description=main.__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=README_CHART, help="the PNG to write")
    out: Path = parser.parse_args(argv).out
    figure = headline_chart(Results.load(FULL_RUN))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=130, metadata={"Software": None})
    _pyplot().close(figure)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main(sys.argv[1:])
