"""examples/thread_local.py, the measurement behind docs/guides/database.md's advice: a
connection cached in threading.local is opened on every thread offload starts, while a
queue of connections under a bound never opens more than the bound."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

import offload

from .support.loops import Runner
from .support.scripts import load_example


def test_a_thread_local_cache_opens_a_connection_on_every_thread(
    run: Runner[Any], default_pool: offload.Pool
) -> None:
    example = load_example("thread_local")
    size = 5
    # Each burst's queries wait for one another, so each burst runs on size threads at once.
    everyone = threading.Barrier(size, timeout=10)
    tally = run(example.run_bursts(example.per_thread(offload.offload), 3, size, 0.0, everyone.wait))
    assert tally.opened == tally.threads >= size
    assert tally.unclosed == tally.opened  # out of reach on their threads


def test_asyncio_to_thread_opens_at_most_one_per_thread_of_its_executor(
    run: Runner[Any], default_pool: offload.Pool
) -> None:
    example = load_example("thread_local")
    tally = run(example.run_bursts(example.per_thread(asyncio.to_thread), 3, 20, 0.0, lambda: None))
    # ThreadPoolExecutor's default bound, which the loop's default executor has.
    assert tally.opened == tally.threads <= min(32, (os.cpu_count() or 1) + 4)


@pytest.mark.parametrize("use_offload", [True, False], ids=["Limiter", "Semaphore"])
def test_a_bounded_queue_opens_at_most_its_bound_and_closes_them_all(
    run: Runner[Any], default_pool: offload.Pool, use_offload: bool
) -> None:
    example = load_example("thread_local")
    tally = run(example.run_bursts(example.pooled(2, use_offload), 3, 5, 0.0, lambda: None))
    assert 1 <= tally.opened <= 2
    assert tally.unclosed == 0


def test_the_example_prints_a_row_per_way(
    capsys: pytest.CaptureFixture[str], default_pool: offload.Pool
) -> None:
    load_example("thread_local").main(bursts=2, size=3, seconds=0.0, gap=0.0, bound=2)
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split(",")[0] for row in rows] == [
        "threading.local",
        "threading.local",
        "queue under Limiter(2)",
        "queue under Semaphore(2)",
    ]
