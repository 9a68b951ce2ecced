"""mkdocs hook: the pages' benchmark tables and command help, made at build time.

A page asks for a generated block with a marker on a line of its own, such as
``<!-- generated: benchmark-full -->``; the hook replaces it with Markdown made from the
committed results: docs/benchmark-full.json through the benchmark runner's own report
code (``benchmarks._report``), docs/benchmark-web.json read here, or from the command's
``--help``. So the published figures are always those of the JSON next to them. mkdocs
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

if TYPE_CHECKING:
    from collections.abc import Callable

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


def benchmark_full() -> str:
    """Every median of the full run, with its ratio to asyncio.to_thread."""
    from benchmarks._report import markdown

    results = _full_results()
    return _machine(results.machine) + "\n\n" + markdown(results)


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
    results = _full_results()
    parts = [_machine(results.machine)]
    for loop in results.loops():
        lines = [
            f"**{loop}**",
            "",
            "| scenario: figure | " + " | ".join(f"`{name}`" for name in SUMMARY_IMPLEMENTATIONS) + " |",
            "|---|" + "---:|" * len(SUMMARY_IMPLEMENTATIONS),
        ]
        for scenario, metric, label in SUMMARY:
            cells = []
            for implementation in SUMMARY_IMPLEMENTATIONS:
                key = (loop, scenario, implementation, metric)
                median, ratio = results.median(key), results.ratio(key)
                cell = "" if median is None else _number(median)
                if ratio is not None and implementation != SUMMARY_IMPLEMENTATIONS[0]:
                    cell += f" ({ratio:.2f}×)"
                cells.append(f"**{cell}**" if implementation == "offload" and cell else cell)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
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
            for mode, label in WEB_MODES.items():
                figure = {key[3]: value for key, value in medians.items() if key[:3] == (loop, n, mode)}
                rate = figure["requests_per_s"]
                lines.append(
                    f"| {loop} | {n} | {label} | {rate:,.0f} ({rate / baseline:.2f}×) | "
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
        env={**os.environ, "COLUMNS": "88"},
    )
    return "```text\n" + done.stdout.rstrip() + "\n```"


GENERATORS: dict[str, Callable[[], str]] = {
    "benchmark-full": benchmark_full,
    "benchmark-summary": benchmark_summary,
    "benchmark-web": benchmark_web,
    "offload-watch-help": offload_watch_help,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    def generated(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in GENERATORS:
            raise KeyError(f"no generator for <!-- generated: {name} -->; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
