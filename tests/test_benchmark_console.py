"""The benchmark runner's console: scenario descriptions as a reader wants them, a word
where a loop was not measured, and the closing summary of who wins and where offload loses."""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console

from benchmarks._implementations import BASELINE, FLOOR
from benchmarks._report import Results, describe, print_summary, print_tables
from benchmarks._scenarios import SCENARIOS

MACHINE = {"cpus": 2, "processor": "test", "python": "3.11", "gil": True, "date": "2026-12-07"}


def printed(show: Callable[[Results, Console], None], results: Results) -> str:
    output = io.StringIO()
    show(results, Console(file=output, width=200))
    return output.getvalue()


def test_descriptions_fill_in_the_sizes_and_drop_the_markup() -> None:
    [steady] = [s for s in SCENARIOS if s.name == "steady_16x0.5ms"]
    assert describe(steady, "quick").startswith("16 tasks, each offloading time.sleep(0.0005) back to back")
    [memory] = [s for s in SCENARIOS if s.name == "memory"]
    assert describe(memory, "quick").startswith("Peak RSS and threads for 10,000 calls blocked at once")
    [bursty] = [s for s in SCENARIOS if s.name == "bursty"]
    assert describe(bursty, "full").startswith(
        "40 short bursts of 20 blocking calls (time.sleep(0.002)), 0.02 s"
    )
    for scenario in SCENARIOS:
        for mode in scenario.sizes:
            text = describe(scenario, mode)
            assert "``" not in text, (scenario.name, text)


def test_a_loop_left_out_of_a_scenario_is_said_and_why() -> None:
    results = Results("quick", MACHINE)
    for loop in ("asyncio", "uvloop"):
        results.add(loop, "round_trip", "offload", {"median_us": 50.0})
    results.add("asyncio", "burst", "offload", {"wall_ms": 80.0})
    text = printed(print_tables, results)
    burst = text[text.index("burst:") :]
    assert "Not measured on uvloop" in burst
    assert "--full measures every loop" in burst
    assert "uvloop" not in burst.split("Not measured on uvloop")[1]  # no empty column for it


def test_the_summary_names_the_winner_and_where_offload_loses() -> None:
    results = Results("quick", MACHINE)
    for implementation, median, peak in (
        ("offload", 50.0, 256.0),
        (BASELINE, 100.0, 6.0),
        (FLOOR, 10.0, 0.0),
    ):
        results.add("asyncio", "round_trip", implementation, {"median_us": median})
        results.add("asyncio", "memory", implementation, {"rss_mib": median, "peak_threads": peak})
    text = " ".join(printed(print_summary, results).split())
    assert "round_trip (median_us ↓) offload 2.00× 1st" in text  # noqa: RUF001 - the floor is not ranked
    assert "offload() is first in 2 of 2 scenarios" in text
    assert "memory: peak_threads 256 vs 6 for asyncio.to_thread (43×)" in text  # noqa: RUF001
