"""Calls from one loop in bursts, in rounds and in a stream, on a pool whose loops that
let their returning threads go get one back at a time (offload/_pool/returning.py) and
on one whose every thread returns, interleaved in one process.

- bursts: ``--bursts`` gathers of 20 calls of ``time.sleep(0.002)``, 20 ms apart, as the
  runner's bursty scenario: each window closes unclaimed, and its thread leaves;
- rounds: as many gathers back to back, each round's calls claiming some of the threads
  the last one returned;
- stream: 16 tasks calling ``time.sleep(0.002)`` one call after another for a second:
  every window is of use (``--seconds`` long).

Each repetition runs on a fresh pool, on a new loop; medians of process CPU per call,
the wall time of a burst or round (calls per second for the stream), and threads started.

    python -m benchmarks.returns [--bursts 20] [--seconds 1] [--repeat 9]
                                [--loops asyncio uvloop]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator

import offload
from offload._pool import returning

from ._runner import interleaved_medians, measurement_arguments

MODES = ("one back at a time", "every one returns")
PATTERNS = ("bursts", "rounds", "stream")
SIZE, SECONDS, GAP = 20, 0.002, 0.02
STREAM_TASKS = 16


@contextlib.contextmanager
def every_thread_returns() -> Iterator[None]:
    """The pool with no loop ever counted as one that lets its threads go."""
    limit = returning.UNUSED_RETURNS
    returning.UNUSED_RETURNS = sys.maxsize
    try:
        yield
    finally:
        returning.UNUSED_RETURNS = limit


async def gathers(pool: offload.Pool, times: int, gap: float) -> tuple[float, float]:
    """``times`` gathers of SIZE calls, ``gap`` seconds apart: CPU µs per call, median ms
    per gather."""
    latencies = []
    cpu = time.process_time()
    for _ in range(times):
        start = time.perf_counter()
        await asyncio.gather(*[pool.run(time.sleep, SECONDS) for _ in range(SIZE)])
        latencies.append(time.perf_counter() - start)
        if gap:
            await asyncio.sleep(gap)
    cpu = time.process_time() - cpu
    return cpu / (times * SIZE) * 1e6, statistics.median(latencies) * 1e3


async def stream(pool: offload.Pool, seconds: float) -> tuple[float, float]:
    """STREAM_TASKS tasks calling one call after another: CPU µs per call, calls/s."""
    served, running = 0, True

    async def serve() -> None:
        nonlocal served
        while running:
            await pool.run(time.sleep, SECONDS)
            served += 1

    cpu = time.process_time()
    tasks = [asyncio.create_task(serve()) for _ in range(STREAM_TASKS)]
    await asyncio.sleep(seconds)
    running = False
    await asyncio.gather(*tasks)
    return (time.process_time() - cpu) / served * 1e6, served / seconds


async def measure(pattern: str, bursts: int, seconds: float) -> tuple[float, float, float]:
    async with offload.Pool(name="returns") as pool:
        if pattern == "stream":
            cpu, wall = await stream(pool, seconds)
        else:
            cpu, wall = await gathers(pool, bursts, GAP if pattern == "bursts" else 0.0)
        return cpu, wall, pool.stats().spawned


async def measure_in(mode: str, pattern: str, bursts: int, seconds: float) -> tuple[float, float, float]:
    if mode == MODES[0]:
        return await measure(pattern, bursts, seconds)
    with every_thread_returns():
        return await measure(pattern, bursts, seconds)


def medians(
    loop: str, pattern: str, bursts: int, seconds: float, repeat: int
) -> dict[str, tuple[float, float, float]]:
    """The medians of each mode, interleaved, each repetition on a new loop."""
    return interleaved_medians(loop, MODES, lambda mode: measure_in(mode, pattern, bursts, seconds), repeat)


def main(argv: list[str]) -> None:
    arguments = measurement_arguments(argv, "returns", __doc__, repeat=9, bursts=20, seconds=1.0)
    columns = f"{'CPU/call':>9} {'ms or calls/s':>14} {'threads started':>16}"
    print(f"{'loop':8} {'pattern':8} {'pool':19} {columns}")
    for loop in arguments.loops:
        for pattern in PATTERNS:
            figures = medians(loop, pattern, arguments.bursts, arguments.seconds, arguments.repeat)
            for mode, (cpu, wall, threads) in figures.items():
                figure = f"{wall:,.0f}/s" if pattern == "stream" else f"{wall:.2f}ms"
                print(f"{loop:8} {pattern:8} {mode:19} {cpu:>7.1f}us {figure:>14} {threads:>16.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
