"""What ``offload.watch_loop()`` costs the event loop while nothing blocks.

    python -m benchmarks.watchdog_overhead [--repetitions 30] [--quick]

Three workloads, on asyncio and on uvloop, each without and with the watchdog at its
default 50 ms threshold:

- ``round_trip``: sequential ``await offload(noop)``: the loop hands a call to a pool
  thread and takes the result back, one call at a time;
- ``sleep0``: ``await asyncio.sleep(0)``: the loop does nothing but turn;
- ``idle``: ``await asyncio.sleep(1)``: the loop waits, and only the heartbeat runs.

Each measurement runs on a fresh loop. Every repetition measures three conditions:
without the watchdog, without it again (the control: what the machine's noise alone
makes of two identical runs), and with it, in an order that rotates from one repetition
to the next, so that drift in the machine's load falls on all alike. For the busy
workloads the report gives the median time per operation without and with the
watchdog, and the overhead as the median of the paired ratios (with over without,
repetition by repetition) with its 95 % confidence interval, for wall time and for the
CPU time of the loop's thread (``time.thread_time()``); and the same for the control,
whose interval is the noise floor. For the idle loop it gives the loop thread's CPU time
per second.
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

Workload = Callable[[int], Awaitable[None]]
Samples = dict[str, list[tuple[float, float]]]  # condition -> (wall, loop CPU) per operation

CONDITIONS = ("without", "control", "with")


def noop() -> None:
    pass


async def round_trip(n: int) -> None:
    for _ in range(n):
        await offload.offload(noop)


async def sleep0(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def idle(seconds: int) -> None:
    await asyncio.sleep(seconds)


# Operations per measurement: a few tenths of a second, a dozen heartbeats or more.
WORKLOADS: dict[str, tuple[Workload, int]] = {
    "round_trip": (round_trip, 2_000),
    "sleep0": (sleep0, 20_000),
    "idle": (idle, 1),
}


def loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        pass
    else:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


async def measure(workload: Workload, n: int, watched: bool) -> tuple[float, float]:
    """Seconds of wall time and of the loop thread's CPU time per operation."""
    if workload is not idle:
        await workload(n // 10)  # warm up: the pool's thread, the caches
    watch: AbstractAsyncContextManager[object] = offload.watch_loop() if watched else nullcontext()
    async with watch:
        wall, cpu = time.perf_counter(), time.thread_time()
        await workload(n)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return wall / n, cpu / n


def run(repetitions: int, scale: float) -> dict[tuple[str, str], Samples]:
    results: dict[tuple[str, str], Samples] = {}
    for repetition in range(repetitions):
        turn = repetition % len(CONDITIONS)
        order = CONDITIONS[turn:] + CONDITIONS[:turn]
        for loop_name, factory in loop_factories().items():
            for name, (workload, n) in WORKLOADS.items():
                if name == "idle" and repetition >= 3:
                    continue  # a second each: three are plenty for a figure this steady
                samples = results.setdefault((loop_name, name), {c: [] for c in CONDITIONS})
                for condition in order:
                    with asyncio.Runner(loop_factory=factory) as runner:
                        size = max(1, int(n * scale))
                        samples[condition].append(runner.run(measure(workload, size, condition == "with")))
        print(f"repetition {repetition + 1}/{repetitions} done", flush=True)
    return results


def median_ci(values: list[float]) -> tuple[float, float, float]:
    """The median and its 95 % confidence interval, from order statistics."""
    ordered = sorted(values)
    k = max(0, math.floor(len(ordered) / 2 - 0.98 * math.sqrt(len(ordered))))
    return statistics.median(ordered), ordered[k], ordered[-1 - k]


def overhead(samples: Samples, condition: str, index: int) -> str:
    pairs = zip(samples[condition], samples["without"], strict=True)
    ratios = [w[index] / wo[index] - 1 for w, wo in pairs]
    median, low, high = (100 * r for r in median_ci(ratios))
    return f"{median:+6.2f} [{low:+6.2f}, {high:+6.2f}]"


def median_us(samples: Samples, condition: str, index: int) -> float:
    return statistics.median(sample[index] for sample in samples[condition]) * 1e6


def report(results: dict[tuple[str, str], Samples], repetitions: int) -> str:
    lines = [
        f"watch_loop() overhead at its default 50 ms threshold, {repetitions} repetitions; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}",
        "",
        f"{'loop':8} {'workload':11} {'without µs/op':>14} {'with µs/op':>11}   "
        f"{'with: wall +%, 95% CI':<26} {'loop CPU +%':<26} {'control: wall +%':<26} {'loop CPU +%':<26}",
    ]
    for (loop_name, name), samples in results.items():
        if name == "idle":
            continue
        lines.append(
            f"{loop_name:8} {name:11} {median_us(samples, 'without', 0):14.2f} "
            f"{median_us(samples, 'with', 0):11.2f}   "
            + " ".join(f"{overhead(samples, c, i):<26}" for c in ("with", "control") for i in (0, 1))
        )
    lines.append("")
    for (loop_name, name), samples in results.items():
        if name == "idle":
            without, with_ = median_us(samples, "without", 1), median_us(samples, "with", 1)
            lines.append(
                f"{loop_name:8} idle loop: its thread's CPU, {without:.0f} µs/s without, {with_:.0f} µs/s "
                "with the watchdog"
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
