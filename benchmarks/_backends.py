"""Threads, processes or a cluster: pure-Python CPU work offloaded to each back-end.

python -m benchmarks backends            # --quick, about half a minute on 2 cores
python -m benchmarks backends --full
python -m benchmarks backends --smoke    # tiny sizes: checks that everything runs

Each repetition runs the same batch of calls (a loop of integer arithmetic, a few calls
per core) on the loop's thread itself, then offloaded to offload's thread pool, to a
``ProcessPool`` and to a local Dask cluster of worker processes, one after the other.
For each back-end: the batch's wall time and its speed-up against the loop's thread,
the round trip of a trivial call (what each call costs beyond its work), and the time
from making the back-end to its first result.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table

import offload

from ._implementations import Call
from ._report import Results, _cell
from ._runner import machine, mode_and_out
from ._scenarios import crunch, noop

__all__ = ["BACKENDS", "crunch", "main"]

SCENARIO = "cpu_work"
LOOP_THREAD = "the loop's thread"
CPUS = os.cpu_count() or 1
BACKENDS = ("threads: offload()", f"processes: ProcessPool({CPUS})", f"Dask: Cluster, {CPUS} local workers")


@dataclass(frozen=True)
class Size:
    n: int
    """Iterations of the arithmetic loop in one call: about 40 ms on the 2-core test machine."""
    calls: int
    round_trips: int
    repetitions: int


SIZES = {
    "smoke": Size(n=2_000, calls=2, round_trips=5, repetitions=1),
    "quick": Size(n=300_000, calls=4 * CPUS, round_trips=200, repetitions=3),
    "full": Size(n=300_000, calls=8 * CPUS, round_trips=1000, repetitions=5),
}


@contextlib.asynccontextmanager
async def open_backend(name: str) -> AsyncIterator[Call]:
    """Yields ``call(fn, *args)`` on the back-end ``name``, as a user would write it."""
    if name == BACKENDS[0]:
        async with offload.Pool(name="bench") as pool:
            yield pool.run
    elif name == BACKENDS[1]:
        async with offload.ProcessPool(CPUS) as processes:
            yield processes.run
    else:
        from distributed import LocalCluster

        with (
            LocalCluster(  # type: ignore[no-untyped-call]  # not annotated
                n_workers=CPUS,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as cluster,
            offload.Cluster(cluster.scheduler_address) as front,
        ):
            yield front.run


async def measure(name: str, size: Size, on_loop_s: float) -> dict[str, float]:
    start = time.perf_counter()
    async with open_backend(name) as call:
        await call(noop)
        startup = time.perf_counter() - start
        batch = [(crunch, size.n)] * size.calls
        # Once unmeasured: workers start on demand, and some may still be starting.
        await asyncio.gather(*(call(*c) for c in batch))
        round_trips = []
        for _ in range(size.round_trips):
            start = time.perf_counter()
            await call(noop)
            round_trips.append(time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(*(call(*c) for c in batch))
        wall = time.perf_counter() - start
    return {
        "wall_ms": wall * 1e3,
        "speedup_vs_loop": on_loop_s / wall,
        "median_us": statistics.median(round_trips) * 1e6,
        "startup_ms": startup * 1e3,
    }


async def repetition(size: Size, backends: tuple[str, ...], results: Results) -> None:
    start = time.perf_counter()
    for _ in range(size.calls):
        crunch(size.n)
    on_loop = time.perf_counter() - start
    results.add("asyncio", SCENARIO, LOOP_THREAD, {"wall_ms": on_loop * 1e3, "speedup_vs_loop": 1.0})
    for name in backends:
        results.add("asyncio", SCENARIO, name, await measure(name, size, on_loop))


def print_table(results: Results, console: Console) -> None:
    m = results.machine
    table = Table(
        title=(
            f"{SCENARIO}: {results.mode} run on {m['cpus']} CPUs ({m['processor']}), Python {m['python']} "
            f"({'GIL' if m['gil'] else 'free-threaded'}), {m['date']}, load average before "
            f"{m['load_average_before'][0]:.2f}; medians [min–max]"
        ),
        title_justify="left",
    )
    columns = {
        "wall_ms": "batch (ms)",
        "speedup_vs_loop": "speed-up vs the loop's thread",
        "median_us": "round trip, trivial call (µs)",
        "startup_ms": "start-up (ms)",
    }
    table.add_column("back-end")
    for title in columns.values():
        table.add_column(title, justify="right")
    for name in (LOOP_THREAD, *BACKENDS):
        cells = [_cell(results, ("asyncio", SCENARIO, name, metric))[0] for metric in columns]
        if any(cells):
            table.add_row(name, *cells)
    console.print(table)


def main(argv: list[str], console: Console) -> None:
    arguments = mode_and_out("python -m benchmarks backends", __doc__, SIZES, argv)
    size = SIZES[arguments.mode]
    backends: tuple[str, ...] = BACKENDS
    if not _has_dask():
        console.print("Dask's distributed is not installed (pip install 'offload[dask]'): no cluster figures")
        backends = BACKENDS[:2]
    results = Results(arguments.mode, machine(("asyncio",)))
    results.machine["work"] = {"n": size.n, "calls": size.calls, "round_trips": size.round_trips}
    # Other programs' load skews a CPU benchmark more than any other: keep a record of it.
    results.machine["load_average_before"] = os.getloadavg()
    for number in range(size.repetitions):
        console.print(f"repetition {number + 1} of {size.repetitions}")
        asyncio.run(repetition(size, backends, results))
    print_table(results, console)
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"backends-{arguments.mode}-{datetime.now():%Y%m%d-%H%M%S}.json"
    results.save(path)
    console.print(f"saved {path}")


def _has_dask() -> bool:
    return importlib.util.find_spec("distributed") is not None
