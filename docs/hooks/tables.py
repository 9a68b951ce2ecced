"""mkdocs hook: the pages' benchmark tables and command help, made at build time.

A page asks for a generated block with a marker on a line of its own, such as
``<!-- generated: benchmark-full -->``; the hook replaces it with Markdown made from the
committed results: docs/benchmark-full.json through the benchmark runner's own report
code (``benchmarks._report``), docs/benchmark-web.json read here, or from the command's
``--help``. ``<!-- generated: chart-NAME -->`` asks for a chart, which
benchmarks/charts.py draws from the same JSON as an SVG file of the site. So the
published figures are always those of the JSON next to them. mkdocs
runs from the checkout's root (``python -m mkdocs build``), where ``benchmarks`` is
importable.
"""

# ruff: noqa: RUF001  (the multiplication sign is meant: these strings are table cells)

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from collections.abc import Callable

    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _full_results() -> Any:
    from benchmarks._report import Results

    return Results.load(DOCS / "benchmark-full.json")


def _machine(machine: dict[str, Any]) -> str:
    versions = machine["versions"]
    others = ", ".join(f"{name} {version}" for name, version in versions.items() if name != "offload")
    build = "with the GIL" if machine["gil"] else "free-threaded"
    return (
        f"Run of {machine['date'][:16].replace('T', ' ')} UTC on {machine['cpus']} CPUs "
        f"({machine['processor']}, {machine['platform']}), {machine['implementation']} "
        f"{machine['python']} {build}; {others}."
    )


def _winners(results: Any, keys: list[tuple[str, str, str, str]], contenders: set[str]) -> set[int]:
    """The positions in ``keys`` (one row of a table) of the best median among the
    contenders; none where they all tie, since then nobody wins."""
    from benchmarks._scenarios import METRICS

    medians = {i: results.median(key) for i, key in enumerate(keys) if key[2] in contenders}
    medians = {i: value for i, value in medians.items() if value is not None}
    if len(set(medians.values())) < 2:
        return set()
    pick = min if METRICS[keys[0][3]].lower_is_better else max
    best = pick(medians.values())
    return {i for i, value in medians.items() if value == best}


def _cells(results: Any, keys: list[tuple[str, str, str, str]], baseline: str) -> list[str]:
    """A row's cells: each median, its ratio to the baseline, the winner's in bold. The
    floor (a hand-off with nothing else, not a pool to use) is shown, never crowned."""
    from benchmarks._implementations import FLOOR

    contenders = {key[2] for key in keys} - {FLOOR}
    winners = _winners(results, keys, contenders)
    cells = []
    for i, key in enumerate(keys):
        median, ratio = results.median(key), results.ratio(key)
        cell = "" if median is None else _number(median)
        if cell and ratio is not None and key[2] != baseline:
            cell += f" ({ratio:.2f}×)"
        cells.append(f"**{cell}**" if cell and i in winners else cell)
    return cells


def benchmark_full() -> str:
    """Every median of the full run, a table per scenario, with its ratio to the baseline."""
    from benchmarks._implementations import BASELINE
    from benchmarks._scenarios import METRICS, SCENARIOS

    results = _full_results()
    loops = results.loops()
    descriptions = {scenario.name: scenario.description for scenario in SCENARIOS}
    sizes = {scenario.name: scenario.sizes.get(results.mode, {}) for scenario in SCENARIOS}
    baselines = {scenario.name: scenario.baseline for scenario in SCENARIOS}
    parts = [_machine(results.machine)]
    scenarios = list(dict.fromkeys(key[1] for key in results.keys_in_order()))
    for scenario in scenarios:
        keys = [key for key in results.keys_in_order() if key[1] == scenario]
        names = _ordered(key[2] for key in keys)
        metrics = list(dict.fromkeys(key[3] for key in keys))
        baseline = baselines.get(scenario, BASELINE)
        lines = [
            f"### `{scenario}`",
            "",
            descriptions.get(scenario, "") + _sizes(sizes.get(scenario, {}), results.mode),
            "",
            "| figure | loop | " + " | ".join(f"`{name}`" for name in names) + " |",
            "|---|---|" + "---:|" * len(names),
        ]
        for metric in metrics:
            for loop in loops:
                row = [(loop, scenario, name, metric) for name in names]
                if all(results.median(key) is None for key in row):
                    continue
                label = f"{metric} ({METRICS[metric].unit})"
                lines.append(f"| {label} | {loop} | " + " | ".join(_cells(results, row, baseline)) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _sizes(sizes: dict[str, Any], mode: str) -> str:
    """The scenario's parameters in the run's mode, as the runner's code gives them now."""
    if not sizes:
        return ""
    shown = "; ".join(
        f"`{name}` = {_number(value) if isinstance(value, int | float) else value}"
        for name, value in sizes.items()
    )
    return f" Sizes in `--{mode}`: {shown}."


def _ordered(names: Any) -> list[str]:
    """Implementations in the order the charts give them (offload first), then the rest."""
    from benchmarks.charts import ORDER

    found = list(dict.fromkeys(names))
    return sorted(found, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


# The summary's rows: scenario, metric, and what a reader calls them.
SUMMARY = [
    ("round_trip", "median_us", "sequential round trip of a no-op: median latency (µs)"),
    ("round_trip", "loop_cpu_us_per_call", "sequential round trip: loop thread CPU per call (µs)"),
    ("batch_10000", "wall_us_per_call", "10,000 no-ops gathered at once: wall time per call (µs)"),
    ("batch_10000", "loop_cpu_us_per_call", "10,000 no-ops gathered: loop thread CPU per call (µs)"),
    ("burst", "wall_ms", "200 calls of `time.sleep(0.05)` at once: time until all finish (ms)"),
    ("burst", "threads_after_1s", "200 calls at once: threads 1 s after the burst"),
    ("memory", "peak_threads", "10,000 calls blocked at once: peak threads"),
    ("memory", "rss_mib", "10,000 calls blocked at once: RSS growth (MiB)"),
    ("steady_4x0ms", "calls_per_s", "steady, 4 tasks × `time.sleep(0)`: calls per second"),
    ("steady_4x0ms", "process_cpu_us_per_call", "steady, 4 tasks × `sleep(0)`: CPU per call (µs)"),
    ("steady_16x0.5ms", "calls_per_s", "steady, 16 tasks × `sleep(0.0005)`: calls per second"),
    ("steady_16x0.5ms", "process_cpu_us_per_call", "steady, 16 tasks × `sleep(0.0005)`: CPU per call (µs)"),
    ("steady_16x2ms", "calls_per_s", "steady, 16 tasks × `sleep(0.002)`: calls per second"),
    ("steady_16x2ms", "process_cpu_us_per_call", "steady, 16 tasks × `sleep(0.002)`: CPU per call (µs)"),
    ("steady_64x5ms", "calls_per_s", "steady, 64 tasks × `sleep(0.005)`: calls per second"),
    ("steady_64x5ms", "process_cpu_us_per_call", "steady, 64 tasks × `sleep(0.005)`: CPU per call (µs)"),
    ("steady_64x5ms", "threads_started_per_call", "steady, 64 tasks: threads started per call"),
    ("responsiveness", "calls_per_s", "8 tasks of back-to-back no-ops, 1 ms ticker: calls per second"),
    ("responsiveness", "tick_late_p99_ms", "8 tasks of no-ops: ticker lateness, p99 (ms)"),
    ("bursty", "burst_ms", "bursts of 20 × 2 ms calls, 20 ms apart: median burst (ms)"),
    ("bursty", "threads_created", "bursts of 20 × 2 ms calls: threads created"),
]
SUMMARY_IMPLEMENTATIONS = ("asyncio.to_thread", "anyio.to_thread", "offload", "offload.install()")


def benchmark_summary() -> str:
    """The figures a reader looks at first, one table per loop, from the full run."""
    from benchmarks._implementations import BASELINE, FLOOR

    results = _full_results()
    present = {key[2] for key in results.values}
    names = [name for name in (*SUMMARY_IMPLEMENTATIONS, FLOOR) if name in present]
    parts = [_machine(results.machine)]
    for loop in results.loops():
        lines = [
            f"**{loop}**",
            "",
            "| scenario: figure | " + " | ".join(f"`{name}`" for name in names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for scenario, metric, label in SUMMARY:
            row = [(loop, scenario, name, metric) for name in names]
            if all(results.median(key) is None for key in row):
                continue
            lines.append(f"| {label} | " + " | ".join(_cells(results, row, BASELINE)) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


WEB_MODES = {"anyio": "anyio as shipped", "anyio-400": "anyio, 400 tokens", "offload": "offload"}


def benchmark_web() -> str:
    """The web benchmark's medians: a FastAPI def endpoint under load, per loop and clients."""
    data = json.loads((DOCS / "benchmark-web.json").read_text())
    medians: dict[tuple[str, int, str, str], float] = {
        (row["loop"], row["clients"], row["mode"], row["metric"]): statistics.median(row["values"])
        for row in data["results"]
    }
    failures = sum(sum(row["values"]) for row in data["results"] if row["metric"] == "failures")
    lines = [
        _machine(data["machine"]) + f" Endpoint `{data['path']}`; failed requests in all runs: "
        f"{failures:,.0f}.",
        "",
        "| loop | clients | `to_thread.run_sync` on | req/s (× anyio) | p50 / p99 | "
        "server CPU per request | threads during / 2 s after | threads started per request |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    loops = list(dict.fromkeys(key[0] for key in medians))
    clients = sorted({key[1] for key in medians})
    for loop in loops:
        for n in clients:
            baseline = medians[loop, n, "anyio", "requests_per_s"]
            rates = {mode: medians.get((loop, n, mode, "requests_per_s"), 0.0) for mode in WEB_MODES}
            best = max(rates.values())
            for mode, label in WEB_MODES.items():
                figure = {key[3]: value for key, value in medians.items() if key[:3] == (loop, n, mode)}
                rate = figure["requests_per_s"]
                cell = f"{rate:,.0f} ({rate / baseline:.2f}×)"
                if rate == best and len(set(rates.values())) > 1:
                    cell = f"**{cell}**"
                lines.append(
                    f"| {loop} | {n} | {label} | {cell} | "
                    f"{figure['p50_ms']:.1f} / {figure['p99_ms']:.1f} ms | "
                    f"{figure['server_cpu_us_per_request']:,.0f} µs | "
                    f"{figure['threads_during']:.0f} / {figure['threads_after']:.0f} | "
                    f"{figure['threads_started_per_request']:.3f} |"
                )
    return "\n".join(lines)


def offload_watch_help() -> str:
    """``python -m offload watch --help``, as the installed package prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "offload", "watch", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "72"},  # what a phone's code block shows, nearly
    )
    return "```text\n" + done.stdout.rstrip() + "\n```"


GENERATORS: dict[str, Callable[[], str]] = {
    "benchmark-full": benchmark_full,
    "benchmark-summary": benchmark_summary,
    "benchmark-web": benchmark_web,
    "offload-watch-help": offload_watch_help,
}

# The charts (benchmarks/charts.py draws them), by the name a page asks for with
# <!-- generated: chart-NAME -->, and what a reader without the picture is told.
CHARTS = {
    "headline": "offload and anyio as times better than asyncio.to_thread, figure by figure; "
    "bars left of 1 are losses",
    "per-call": "latency and CPU per call, one call after another and 10,000 gathered",
    "batch": "wall time and the loop thread's CPU per call against how many calls are gathered",
    "burst": "200 blocking calls at once: time until all finish, threads at the peak and 1 s later",
    "steady-throughput": "steady streams of calls: calls per second, per number of tasks",
    "steady-cpu": "steady streams of calls: CPU per call, per number of tasks",
    "bursty": "bursts with gaps: median burst, threads created, CPU per call",
    "memory": "10,000 calls blocked at once: memory growth and threads",
    "web": "a FastAPI def endpoint under load: requests per second, and threads left after",
}


def _chart_svg(name: str) -> str | None:
    from benchmarks import charts

    if name == "web":
        figure = charts.web_chart(json.loads((DOCS / "benchmark-web.json").read_text()))
    else:
        figure = charts.CHARTS[name](_full_results())
    return None if figure is None else charts.to_svg(figure)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Adds the charts, drawn from the committed JSON, as files of the site: charts/NAME.svg."""
    for name in CHARTS:
        svg = _chart_svg(name)
        if svg is not None:
            files.append(File.generated(config, f"charts/{name}.svg", content=svg))
    return files


def on_page_markdown(markdown: str, page: Page, files: Files, **_: Any) -> str:
    up = "../" * page.file.src_uri.count("/")

    def generated(found: re.Match[str]) -> str:
        name = found.group(1)
        if name.startswith("chart-") and name[6:] in CHARTS:
            chart = name[6:]
            if files.get_file_from_path(f"charts/{chart}.svg") is None:
                return f"*(No chart of `{chart}`: the committed run has none of its figures.)*"
            return f"![{CHARTS[chart]}]({up}charts/{chart}.svg){{ .chart loading=lazy }}"
        if name not in GENERATORS:
            known = ", ".join([*GENERATORS, *(f"chart-{chart}" for chart in CHARTS)])
            raise KeyError(f"no generator for <!-- generated: {name} -->; known: {known}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
