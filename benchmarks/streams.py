"""Streams of no-op calls from 1, 4 and 16 tasks: ``offload()`` and ``asyncio.to_thread``
after ``install()`` against ``asyncio.to_thread`` as shipped, per call.

Each task awaits one call after another; after a warm-up, calls per second, the
process's CPU per call (every thread's), and its voluntary context switches per call
(each a thread that parked and was woken: the cost a hand-off pays beyond its Python).
The three run interleaved, each on a new loop, ``--repeat`` times; medians, and their
ratios to ``asyncio.to_thread`` in the same run.

    python -m benchmarks.streams [--seconds 1.0] [--repeat 5] [--loops asyncio uvloop]
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import offload

from ._runner import LOOPS, measurement_arguments

WAYS = ("asyncio.to_thread", "offload.install()", "offload()")


def noop() -> None:
    pass


def context_switches() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def call_of(way: str) -> Callable[..., Awaitable[Any]]:
    """How ``way`` calls a function, on the running loop (``install()`` done for it)."""
    if way == "offload()":
        return offload.offload
    if way == "offload.install()":
        offload.install()
    return asyncio.to_thread


async def stream(way: str, tasks: int, seconds: float) -> tuple[float, float, float]:
    """Calls per second, process CPU per call (µs) and voluntary context switches per
    call of ``tasks`` tasks calling ``way``."""
    call = call_of(way)
    served, running = 0, True

    async def serve() -> None:
        nonlocal served
        while running:
            await call(noop)
            served += 1

    workers = [asyncio.create_task(serve()) for _ in range(tasks)]
    await asyncio.sleep(seconds / 4)  # the warm-up: the pool grows to the stream
    served, start, cpu, switches = 0, time.perf_counter(), time.process_time(), context_switches()
    await asyncio.sleep(seconds)
    elapsed, cpu, calls = time.perf_counter() - start, time.process_time() - cpu, served
    switches = context_switches() - switches
    running = False
    await asyncio.gather(*workers)
    return calls / elapsed, cpu / max(calls, 1) * 1e6, switches / max(calls, 1)


def main(argv: list[str]) -> None:
    arguments = measurement_arguments(argv, "streams", __doc__, repeat=5, seconds=1.0)
    ratios = f"{'calls/s':>10} {'x':>6} {'CPU/call':>9} {'x':>6} {'switches/call':>14}"
    print(f"{'loop':8} {'tasks':>5} {'way':18} {ratios}")
    for loop in arguments.loops:
        for tasks in (1, 4, 16):
            figures: dict[str, list[tuple[float, float, float]]] = {way: [] for way in WAYS}
            for repetition in range(arguments.repeat):
                shift = repetition % len(WAYS)
                for way in WAYS[shift:] + WAYS[:shift]:
                    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
                        figures[way].append(runner.run(stream(way, tasks, arguments.seconds)))
            rate_0 = statistics.median(rate for rate, _, _ in figures[WAYS[0]])
            cpu_0 = statistics.median(cpu for _, cpu, _ in figures[WAYS[0]])
            for way, values in figures.items():
                rate = statistics.median(rate for rate, _, _ in values)
                cpu = statistics.median(cpu for _, cpu, _ in values)
                switches = statistics.median(switches for _, _, switches in values)
                print(
                    f"{loop:8} {tasks:>5} {way:18} {rate:>10,.0f} {rate / rate_0:>5.2f}x "
                    f"{cpu:>7.1f}us {cpu_0 / cpu:>5.2f}x {switches:>14.2f}"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
