"""The benchmark runner's own logic: the plan, the ratios, saving and comparing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import offload
from benchmarks import backlog, convoy, returns, streams
from benchmarks._implementations import BASELINE, IMPLEMENTATIONS, RAW_THREAD, THREAD_PER_CALL
from benchmarks._report import Results, compare, markdown
from benchmarks._runner import Plan
from benchmarks._scenarios import SCENARIOS


def test_the_plan_interleaves_and_rotates_implementations() -> None:
    [round_trip] = [s for s in SCENARIOS if s.name == "round_trip"]
    plan = Plan(mode="quick", loops=("asyncio",), scenarios=(round_trip,))
    orders = [[m.implementation for m in plan.measurements() if m.repetition == r] for r in range(3)]
    assert orders[0] == list(IMPLEMENTATIONS)
    assert orders[1] == [*IMPLEMENTATIONS[1:], IMPLEMENTATIONS[0]]
    assert all(sorted(order) == sorted(IMPLEMENTATIONS) for order in orders)


def test_slow_scenarios_are_capped_and_limited_to_their_loops() -> None:
    [burst] = [s for s in SCENARIOS if s.name == "burst"]
    plan = Plan(mode="quick", loops=("asyncio", "uvloop"), scenarios=(burst,))
    assert {(m.repetition, m.loop) for m in plan.measurements()} == {(0, "asyncio")}


def test_thread_start_measures_offload_against_a_thread_per_call() -> None:
    [thread_start] = [s for s in SCENARIOS if s.name == "thread_start"]
    plan = Plan(
        mode="quick", loops=("asyncio",), implementations=(BASELINE, "offload"), scenarios=(thread_start,)
    )
    assert {m.implementation for m in plan.measurements()} == {"offload", *THREAD_PER_CALL}
    results = Results("quick", {"cpus": 2})
    for implementation, cpu in (("offload", 40.0), (RAW_THREAD, 30.0)):
        results.add("asyncio", "thread_start", implementation, {"process_cpu_us_per_thread": cpu})
    assert results.ratio(("asyncio", "thread_start", "offload", "process_cpu_us_per_thread")) == 0.75


def make_results() -> Results:
    results = Results("quick", {"cpus": 2})
    results.add("asyncio", "round_trip", BASELINE, {"median_us": 100.0})
    results.add("asyncio", "round_trip", "offload", {"median_us": 50.0})
    results.add("asyncio", "gil_release", BASELINE, {"speedup_vs_loop": 1.5})
    results.add("asyncio", "gil_release", "offload", {"speedup_vs_loop": 1.8})
    return results


def test_ratios_read_as_times_better_than_the_baseline() -> None:
    results = make_results()
    assert results.ratio(("asyncio", "round_trip", "offload", "median_us")) == 2.0
    assert results.ratio(("asyncio", "gil_release", "offload", "speedup_vs_loop")) == 1.2
    assert results.ratio(("asyncio", "round_trip", "nothing", "median_us")) is None


def test_results_survive_a_round_trip_through_json_and_compare(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    make_results().save(path)
    loaded = Results.load(path)
    assert loaded.values == make_results().values
    output = io.StringIO()
    compare(make_results(), loaded, Console(file=output, width=200))
    assert "1.00" in output.getvalue()


def test_markdown_lists_every_median_with_its_ratio() -> None:
    table = markdown(make_results()).splitlines()
    assert table[0] == "| loop | scenario | metric | asyncio.to_thread | offload |"
    assert "| asyncio | round_trip | median_us (µs) | 100 | 50 (2.00×) |" in table  # noqa: RUF001


def test_the_streams_command_prints_every_way_on_every_count_of_tasks(
    capsys: pytest.CaptureFixture[str], default_pool: offload.Pool
) -> None:
    # On a default pool of the test's own, whose threads end with it.
    streams.main(["--seconds", "0.02", "--repeat", "1", "--loops", "asyncio"])
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[1:3] for row in rows] == [
        [str(tasks), way]
        for tasks in (1, 4, 16)
        for way in ("asyncio.to_thread", "offload.install()", "offload()")
    ]


def test_the_backlog_command_measures_the_pool_watching_and_not(capsys: pytest.CaptureFixture[str]) -> None:
    moves, short = backlog.QueueWatch._queue_moves_locked, backlog.watching.SHORT_CALL
    backlog.main(["--calls", "50", "--blocking", "2", "--repeat", "2", "--loops", "asyncio"])
    rows = [row.split()[:2] for row in capsys.readouterr().out.splitlines()]
    assert rows.count(["asyncio", "watching"]) == rows.count(["asyncio", "not"]) == 2
    # The rule is back on.
    assert (backlog.QueueWatch._queue_moves_locked, backlog.watching.SHORT_CALL) == (moves, short)


def test_the_returns_command_measures_each_pattern_with_the_rule_and_without(
    capsys: pytest.CaptureFixture[str],
) -> None:
    limit = returns.returning.UNUSED_RETURNS
    returns.main(["--bursts", "2", "--seconds", "0.05", "--repeat", "2", "--loops", "asyncio"])
    rows = [row.split()[:3] for row in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [
        ["asyncio", pattern, first_word] for pattern in returns.PATTERNS for first_word in ("one", "every")
    ]
    assert limit == returns.returning.UNUSED_RETURNS  # the rule is back on


def test_the_convoy_command_measures_each_way_and_pattern_taking_the_lock_and_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    yields, default = convoy.lock.YIELDS, offload.default_pool()
    convoy.main(["--size", "100", "--seconds", "0.05", "--repeat", "2", "--loops", "asyncio"])
    rows = [row.split()[:4] for row in capsys.readouterr().out.splitlines()[1:]]
    each = [(way, pattern) for way in convoy.WAYS for pattern in convoy.PATTERNS]
    assert rows == [["asyncio", way, pattern, mode] for way, pattern in each for mode in convoy.MODES]
    assert yields == convoy.lock.YIELDS  # take() yields again
    assert offload.default_pool() is default


def test_the_chart_command_writes_where_told_and_reads_options_as_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks import charts

    with pytest.raises(SystemExit) as exited:
        charts.main(["--help"])
    assert exited.value.code == 0
    assert "usage: python -m benchmarks.charts" in capsys.readouterr().out
    out = tmp_path / "chart.png"
    charts.main([str(out)])
    assert out.read_bytes().startswith(b"\x89PNG")
    assert list(tmp_path.iterdir()) == [out]
