"""What ``offload.watch_loop()`` costs the event loop while nothing blocks.

    python -m benchmarks.watchdog_overhead [--repetitions 30] [--quick]

Three workloads, on asyncio and on uvloop:

- ``round_trip``: sequential ``await offload(noop)``: the loop hands a call to a pool
  thread and takes the result back, one call at a time;
- ``sleep0``: ``await asyncio.sleep(0)``: the loop does nothing but turn;
- ``idle``: ``await asyncio.sleep(1)``: the loop waits, and only the watchdog's probes
  wake it.

Each runs under four conditions, each measurement on a fresh loop: without the watchdog;
without it again (the control, whose spread is the noise of the machine); with it at its
default threshold (50 ms: 80 probes a second); and with it at 2 ms, which sends 25 times
as many probes, so that a cost too small to see at 80 probes a second shows above the
noise, and can be divided by 25. The order of the conditions rotates from one
repetition to the next, so that drift in the machine's load falls on all alike.

For the busy workloads the report gives the median time per operation without the
watchdog and, for each other condition, the overhead as the median of the paired ratios
(condition over "without", repetition by repetition) with its 95 % confidence interval,
for wall time and for the CPU time of the loop's thread (``time.thread_time()``). The
last column divides the 25-times overhead by 25: the cost of 80 probes a second, read
where it can be seen. At 2 ms, a stall of the machine can count as a block, whose stack
costs more than a probe: the report says how many there were. For the idle loop it gives
the loop thread's CPU time per second.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext

import offload

from ._runner import LOOPS
from ._scenarios import noop

__all__ = ["main"]

Workload = Callable[[int], Awaitable[None]]
Sample = tuple[float, float, int]  # wall and loop CPU seconds per operation, blocks seen
Samples = dict[str, list[Sample]]  # by condition

DEFAULT_THRESHOLD = 0.05
AMPLIFIED = "25x probes"
CONDITIONS: dict[str, float | None] = {
    "without": None,
    "control": None,
    "with": DEFAULT_THRESHOLD,
    AMPLIFIED: DEFAULT_THRESHOLD / 25,
}


async def round_trip(n: int) -> None:
    for _ in range(n):
        await offload.offload(noop)


async def sleep0(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def idle(seconds: int) -> None:
    await asyncio.sleep(seconds)


# Operations per measurement: a few tenths of a second, a dozen probes or more.
WORKLOADS: dict[str, tuple[Workload, int]] = {
    "round_trip": (round_trip, 2_000),
    "sleep0": (sleep0, 20_000),
    "idle": (idle, 1),
}


async def measure(workload: Workload, n: int, threshold: float | None) -> Sample:
    if workload is not idle:
        await workload(n // 10)  # warm up: the pool's thread, the caches
    blocks: list[offload.BlockReport] = []
    watch: AbstractAsyncContextManager[object] = (
        nullcontext() if threshold is None else offload.watch_loop(threshold, on_block=blocks.append)
    )
    async with watch:
        wall, cpu = time.perf_counter(), time.thread_time()
        await workload(n)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return wall / n, cpu / n, len(blocks)


def run(repetitions: int, scale: float) -> dict[tuple[str, str], Samples]:
    results: dict[tuple[str, str], Samples] = {}
    conditions = list(CONDITIONS)
    for repetition in range(repetitions):
        turn = repetition % len(conditions)
        order = conditions[turn:] + conditions[:turn]
        for loop_name, factory in LOOPS.items():
            for name, (workload, n) in WORKLOADS.items():
                if name == "idle" and repetition >= 3:
                    continue  # a second each: three are plenty for a figure this steady
                samples = results.setdefault((loop_name, name), {c: [] for c in conditions})
                for condition in order:
                    with asyncio.Runner(loop_factory=factory) as runner:
                        size = max(1, int(n * scale))
                        samples[condition].append(runner.run(measure(workload, size, CONDITIONS[condition])))
        print(f"repetition {repetition + 1}/{repetitions} done", flush=True)
    return results


def median_ci(values: list[float]) -> tuple[float, float, float]:
    """The median and its 95 % confidence interval, from order statistics."""
    ordered = sorted(values)
    k = max(0, math.floor(len(ordered) / 2 - 0.98 * math.sqrt(len(ordered))))
    return statistics.median(ordered), ordered[k], ordered[-1 - k]


def overhead(samples: Samples, condition: str, index: int) -> tuple[float, float, float]:
    """The median paired overhead of ``condition`` in percent, and its 95 % interval."""
    pairs = zip(samples[condition], samples["without"], strict=True)
    median, low, high = median_ci([c[index] / w[index] - 1 for c, w in pairs])
    return 100 * median, 100 * low, 100 * high


def median_us(samples: Samples, condition: str, index: int) -> float:
    return statistics.median(sample[index] for sample in samples[condition]) * 1e6


def busy_rows(loop_name: str, name: str, samples: Samples) -> list[str]:
    rows = []
    for index, metric in enumerate(("wall", "loop CPU")):
        cells = [
            f"{loop_name:8} {name:11} {metric:9} {median_us(samples, 'without', index):9.2f}",
            *(
                "{:+7.2f} [{:+7.2f}, {:+7.2f}]".format(*overhead(samples, condition, index))
                for condition in ("with", "control", AMPLIFIED)
            ),
            f"{overhead(samples, AMPLIFIED, index)[0] / 25:+7.2f}",
        ]
        rows.append("   ".join(cells))
    return rows


def report(results: dict[tuple[str, str], Samples], repetitions: int) -> str:
    lines = [
        f"watch_loop() overhead, {repetitions} repetitions; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}",
        "",
        f"{'loop':8} {'workload':11} {'metric':9} {'µs/op':>9}   "
        + "   ".join(f"{title + ' +%, 95% CI':<26}" for title in ("50 ms", "control", AMPLIFIED))
        + "   50 ms, from 25x +%",
    ]
    for (loop_name, name), samples in results.items():
        if name != "idle":
            lines += busy_rows(loop_name, name, samples)
    blocks = sum(sample[2] for samples in results.values() for sample in samples[AMPLIFIED])
    lines += ["", f"blocks seen at 2 ms, all workloads: {blocks}", ""]
    for (loop_name, name), samples in results.items():
        if name == "idle":
            without, with_ = median_us(samples, "without", 1), median_us(samples, "with", 1)
            lines.append(
                f"{loop_name:8} idle loop: its thread's CPU, {without:.0f} µs/s without, {with_:.0f} µs/s "
                "with the watchdog at 50 ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a tenth of the operations, 3 repetitions")
    args = parser.parse_args()
    repetitions = 3 if args.quick else args.repetitions
    results = run(repetitions, scale=0.1 if args.quick else 1.0)
    print(report(results, repetitions))


if __name__ == "__main__":
    main()
