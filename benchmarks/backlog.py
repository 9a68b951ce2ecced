"""A backlog of no-op calls gathered at once, on a pool that watches its queue and on one
that does not (the pool's point 8, offload/_pool/watching.py), interleaved in one process.

With watching off, a starting thread always takes a queued call and starts the next
thread while calls are queued, as the pool did before: the backlog grows a thread after
another for as long as it lasts. Each repetition gathers ``--calls`` no-ops on a fresh
pool, on a new loop; medians of wall time and process CPU per call, and threads started.
Then the same backlog with ``--blocking`` calls of ``time.sleep(0.05)`` submitted after
it: how long until every call has finished, for calls that block behind short ones must
still each get a thread.

    python -m benchmarks.backlog [--calls 10000] [--blocking 20] [--repeat 12]
                                 [--loops asyncio uvloop]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator

import offload
from offload._pool import watching
from offload._pool.watching import QueueWatch

from ._runner import interleaved_medians, measurement_arguments

MODES = ("watching", "not watching")


def noop() -> None:
    pass


@contextlib.contextmanager
def watching_off() -> Iterator[None]:
    """The pool as it was without point 8: no queue ever counts as moving, and no call
    as short (a thread that ends one returns to its loop)."""
    moves, short = QueueWatch._queue_moves_locked, watching.SHORT_CALL
    QueueWatch._queue_moves_locked = lambda self: False  # type: ignore[method-assign]
    watching.SHORT_CALL = 0.0
    try:
        yield
    finally:
        QueueWatch._queue_moves_locked = moves  # type: ignore[method-assign]
        watching.SHORT_CALL = short


BLOCKING_SECONDS = 0.05


async def gather_backlog(calls: int, blocking: int) -> tuple[float, float, float]:
    """For ``calls`` no-ops, then ``blocking`` calls that block, submitted at once: wall
    µs and process CPU µs per no-op and threads started (``blocking`` 0), or ms until
    every call has finished and threads started."""
    async with offload.Pool(name="backlog") as pool:
        start, cpu = time.perf_counter(), time.process_time()
        no_ops = [pool.run(noop) for _ in range(calls)]
        blocked = [pool.run(time.sleep, BLOCKING_SECONDS) for _ in range(blocking)]
        await asyncio.gather(*no_ops, *blocked)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        if blocking:
            return wall * 1e3, 0.0, pool.stats().spawned
        return wall / calls * 1e6, cpu / calls * 1e6, pool.stats().spawned


async def measure(mode: str, calls: int, blocking: int) -> tuple[float, float, float]:
    if mode == "watching":
        return await gather_backlog(calls, blocking)
    with watching_off():
        return await gather_backlog(calls, blocking)


def medians(loop: str, calls: int, blocking: int, repeat: int) -> dict[str, tuple[float, float, float]]:
    """The medians of each mode, interleaved, each repetition on a new loop."""
    return interleaved_medians(loop, MODES, lambda mode: measure(mode, calls, blocking), repeat)


def main(argv: list[str]) -> None:
    arguments = measurement_arguments(argv, "backlog", __doc__, repeat=12, calls=10_000, blocking=20)
    print(f"{arguments.calls} no-ops gathered")
    print(f"{'loop':8} {'pool':13} {'wall/call':>10} {'CPU/call':>9} {'threads started':>16}")
    for loop in arguments.loops:
        for mode, (wall, cpu, threads) in medians(loop, arguments.calls, 0, arguments.repeat).items():
            print(f"{loop:8} {mode:13} {wall:>8.1f}us {cpu:>7.1f}us {threads:>16.0f}")
    print(f"then {arguments.blocking} calls of time.sleep({BLOCKING_SECONDS}) after them")
    print(f"{'loop':8} {'pool':13} {'all done':>10} {'threads started':>16}")
    for loop in arguments.loops:
        figures = medians(loop, arguments.calls, arguments.blocking, arguments.repeat)
        for mode, (wall, _, threads) in figures.items():
            print(f"{loop:8} {mode:13} {wall:>8.1f}ms {threads:>16.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
