"""The event loop's thread taking the pool's locks without forming a convoy
(offload/_base/lock.py), against blocking on them at once, interleaved in one process.

- batch: ``--size`` no-op calls gathered at once, through ``offload()`` and through
  ``asyncio.to_thread`` after ``install()``: the loop's thread submits while pool threads
  run the calls, both taking the pool's lock for each;
- stream: 4 tasks calling no-ops one after another for ``--seconds``.

Each repetition runs on a fresh default pool and a new loop; medians of wall and
process CPU per call, and of the voluntary context switches per call (``getrusage()``):
a convoy pays two per acquisition.

    python -m benchmarks.convoy [--size 10000] [--seconds 0.5] [--repeat 9]
                                [--loops asyncio uvloop]
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sys
import time
from collections.abc import Iterator

import offload
from offload._base import lock

from . import streams
from ._runner import Figures, interleaved_medians, measurement_arguments

MODES = ("take()", "acquire()")
WAYS = ("offload()", "offload.install()")
PATTERNS = ("batch", "stream")
STREAM_TASKS = 4


@contextlib.contextmanager
def blocking_at_once() -> Iterator[None]:
    """``take()`` blocks on a held lock at once, as ``acquire()`` does."""
    yields = lock.YIELDS
    lock.YIELDS = 0
    try:
        yield
    finally:
        lock.YIELDS = yields


async def batch(way: str, size: int) -> Figures:
    """Wall µs, process CPU µs and voluntary context switches, per call, of ``size``
    no-ops gathered at once."""
    call = streams.call_of(way)
    await asyncio.gather(*(call(streams.noop) for _ in range(64)))  # the pool grows, the loop warms
    start, cpu, switches = time.perf_counter(), time.process_time(), streams.context_switches()
    await asyncio.gather(*[call(streams.noop) for _ in range(size)])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall / size * 1e6, cpu / size * 1e6, (streams.context_switches() - switches) / size


async def measure(way: str, pattern: str, size: int, seconds: float) -> Figures:
    """The figures of ``batch()``, for ``pattern``, on a fresh default pool."""
    async with offload.Pool(name="convoy") as pool:
        previous = offload.set_default_pool(pool)
        try:
            if pattern == "batch":
                return await batch(way, size)
            rate, cpu, switches = await streams.stream(way, STREAM_TASKS, seconds)
            return 1e6 / rate, cpu, switches
        finally:
            offload.set_default_pool(previous)


async def measure_in(mode: str, way: str, pattern: str, size: int, seconds: float) -> Figures:
    if mode == MODES[0]:
        return await measure(way, pattern, size, seconds)
    with blocking_at_once():
        return await measure(way, pattern, size, seconds)


def main(argv: list[str]) -> None:
    arguments = measurement_arguments(argv, "convoy", __doc__, repeat=9, size=10_000, seconds=0.5)
    figures_header = f"{'wall/call':>10} {'CPU/call':>9} {'switches/call':>14}"
    print(f"{'loop':8} {'way':17} {'pattern':8} {'loop takes':10} {figures_header}")
    for loop, way, pattern in itertools.product(arguments.loops, WAYS, PATTERNS):
        each = functools.partial(
            measure_in, way=way, pattern=pattern, size=arguments.size, seconds=arguments.seconds
        )
        for mode, (wall, cpu, switches) in interleaved_medians(loop, MODES, each, arguments.repeat).items():
            row = f"{wall:>8.2f}us {cpu:>7.2f}us {switches:>14.3f}"
            print(f"{loop:8} {way:17} {pattern:8} {mode:10} {row}")


if __name__ == "__main__":
    main(sys.argv[1:])
