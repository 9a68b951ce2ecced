"""The scenarios: each a coroutine that measures one implementation on the running loop.

Every scenario takes the implementation's ``call`` and its own size parameters, and
returns a mapping of metric name to value. The metrics' units and directions are
declared in ``METRICS``.
"""

from __future__ import annotations

import _thread
import asyncio
import hashlib
import math
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._implementations import BASELINE, CPU_PEERS, RAW_THREAD, THREAD_PER_CALL, Call

__all__ = ["METRICS", "SCENARIOS", "Metric", "Scenario"]

Measure = Callable[..., Awaitable[dict[str, float]]]


@dataclass(frozen=True)
class Metric:
    unit: str
    lower_is_better: bool = True


METRICS: dict[str, Metric] = {
    "median_us": Metric("µs"),
    "p99_us": Metric("µs"),
    "wall_us_per_call": Metric("µs"),
    "loop_cpu_us_per_call": Metric("µs"),
    "wall_ms": Metric("ms"),
    "peak_threads": Metric("threads"),
    "threads_after_1s": Metric("threads"),
    "burst_ms": Metric("ms"),
    "threads_created": Metric("threads"),
    "speedup_vs_loop": Metric("x", lower_is_better=False),
    "tick_late_p50_ms": Metric("ms"),
    "tick_late_p99_ms": Metric("ms"),
    "calls_per_s": Metric("calls/s", lower_is_better=False),
    "process_cpu_us_per_call": Metric("µs"),  # every thread's, the pool's included
    "threads_started_per_s": Metric("threads/s"),
    "threads_started_per_call": Metric("threads"),
    "rss_mib": Metric("MiB"),
    "startup_ms": Metric("ms"),  # the backends subcommand: from making a back-end to its first result
    "wall_us_per_thread": Metric("µs"),
    "process_cpu_us_per_thread": Metric("µs"),
}


def noop() -> None:
    pass


class ProcessCpu:
    """The CPU time of the whole process (every thread) over a stretch, per call."""

    def __init__(self) -> None:
        self._start = time.process_time()

    def per_call_us(self, calls: int) -> float:
        return (time.process_time() - self._start) / max(calls, 1) * 1e6


def _p99(ordered: Sequence[float]) -> float:
    """The 99th percentile of ``ordered``, sorted, by the nearest rank below."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class ThreadSampler:
    """Samples ``threading.active_count()`` from its own thread, to catch the peak."""

    def __init__(self, period: float = 0.0005) -> None:
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)
        self.peak = 0

    def _sample(self) -> None:
        while not self._stop.wait(self._period):
            self.peak = max(self.peak, threading.active_count() - 1)  # less the sampler

    def __enter__(self) -> ThreadSampler:
        self.peak = threading.active_count()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


async def round_trip(call: Call, calls: int) -> dict[str, float]:
    """``calls`` sequential round trips of a trivial call, one awaited before the next.

    The latency a request handler pays for each blocking call it offloads, and the
    loop thread's own CPU time per call: every microsecond of it is taken from every
    other task the loop serves.
    """
    for _ in range(50):
        await call(noop)
    samples = []
    cpu, process = time.thread_time(), ProcessCpu()
    for _ in range(calls):
        start = time.perf_counter_ns()
        await call(noop)
        samples.append(time.perf_counter_ns() - start)
    cpu = time.thread_time() - cpu
    samples.sort()
    return {
        "median_us": statistics.median(samples) / 1e3,
        "p99_us": _p99(samples) / 1e3,
        "loop_cpu_us_per_call": cpu / calls * 1e6,
        "process_cpu_us_per_call": process.per_call_us(calls),
    }


async def batch(call: Call, size: int) -> dict[str, float]:
    """A batch of ``size`` trivial calls gathered at once, as a fan-out does.

    Wall time and loop-thread CPU per call: what it costs the loop to hand out many
    calls and take their results back.
    """
    await asyncio.gather(*(call(noop) for _ in range(min(size, 64))))
    start, cpu, process = time.perf_counter(), time.thread_time(), ProcessCpu()
    await asyncio.gather(*[call(noop) for _ in range(size)])
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    return {
        "wall_us_per_call": wall / size * 1e6,
        "loop_cpu_us_per_call": cpu / size * 1e6,
        "process_cpu_us_per_call": process.per_call_us(size),
    }


async def burst(call: Call, calls: int, seconds: float) -> dict[str, float]:
    """A burst of ``calls`` calls that each block (``time.sleep(seconds)``), as a fan-out to slow I/O.

    Time until all finish (a pool that is too small serialises them), the most
    threads alive at once, and the threads still held one second after the burst.
    """
    baseline = threading.active_count()
    with ThreadSampler() as sampler:
        start, process = time.perf_counter(), ProcessCpu()
        await asyncio.gather(*[call(time.sleep, seconds) for _ in range(calls)])
        wall, cpu = time.perf_counter() - start, process.per_call_us(calls)
    await asyncio.sleep(1.0)
    return {
        "wall_ms": wall * 1e3,
        "process_cpu_us_per_call": cpu,
        "peak_threads": sampler.peak - baseline,
        "threads_after_1s": threading.active_count() - baseline,
    }


async def bursty(call: Call, bursts: int, size: int, seconds: float, gap: float) -> dict[str, float]:
    """``bursts`` short bursts of ``size`` blocking calls (``time.sleep(seconds)``), ``gap`` s apart.

    Where keeping at most one idle thread costs: a pool that shrinks between bursts
    must start threads again for the next one. Threads created and the median burst
    latency show what that costs.
    """
    threads: set[threading.Thread] = set()

    def work() -> None:
        threads.add(threading.current_thread())
        time.sleep(seconds)

    latencies = []
    process = ProcessCpu()
    for _ in range(bursts):
        start = time.perf_counter()
        await asyncio.gather(*[call(work) for _ in range(size)])
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(gap)
    return {
        "burst_ms": statistics.median(latencies) * 1e3,
        "process_cpu_us_per_call": process.per_call_us(bursts * size),
        "threads_created": len(threads),
    }


def _digest(buffer: bytes) -> bytes:
    return hashlib.sha256(buffer).digest()


async def gil_release(call: Call, buffers: int, mib: float) -> dict[str, float]:
    """SHA-256 over ``buffers`` buffers of ``mib`` MiB, which releases the GIL, spread over threads.

    Speed-up against hashing on the loop thread itself: what a pool gives C code that
    releases the GIL, on this machine's cores.
    """
    data = [os.urandom(int(mib * (1 << 20))) for _ in range(buffers)]
    return await _speedup_over_loop(call, _digest, data)


def crunch(n: int) -> int:
    """Pure-Python CPU work: it holds the GIL (where there is one) the whole time."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


async def cpu_bound(call: Call, calls: int, iterations: int) -> dict[str, float]:
    """Pure-Python CPU work (a loop of ``iterations`` steps), ``calls`` calls at once, in parallel or not.

    Speed-up against running them on the loop thread. offload's threads: under the GIL
    they take turns, so about 1x at best; on a free-threaded build (3.13t) they run at
    once, on as many cores as there are calls. ``InterpreterPool`` (Python 3.14+; left
    out of the plan before) and ``ProcessPool`` run them on as many cores in any build,
    and copy each call and its result. One batch, not measured, first starts the
    interpreters and processes: their start-up is the backends subcommand's to measure.
    """
    await asyncio.gather(*[call(crunch, iterations) for _ in range(calls)])
    return await _speedup_over_loop(call, crunch, [iterations] * calls)


async def _speedup_over_loop(call: Call, fn: Callable[[Any], object], inputs: list[Any]) -> dict[str, float]:
    """``fn`` over ``inputs`` on the loop thread, one after another, then offloaded at once."""
    start = time.perf_counter()
    for item in inputs:
        fn(item)
    on_loop = time.perf_counter() - start
    start, process = time.perf_counter(), ProcessCpu()
    await asyncio.gather(*[call(fn, item) for item in inputs])
    offloaded = time.perf_counter() - start
    return {
        "speedup_vs_loop": on_loop / offloaded,
        "wall_ms": offloaded * 1e3,
        "process_cpu_us_per_call": process.per_call_us(len(inputs)),
    }


async def responsiveness(call: Call, seconds: float, producers: int) -> dict[str, float]:
    """How late a 1 ms ticker on the loop wakes, over ``seconds`` s, while the pool serves a steady stream.

    ``producers`` tasks offload trivial calls back to back; a ticker sleeps 1 ms at a
    time. Its lateness is what every timer and socket on the loop suffers.
    """
    loop = asyncio.get_running_loop()
    running = True
    served = 0

    async def produce() -> None:
        nonlocal served
        while running:
            await call(noop)
            served += 1

    tasks = [asyncio.create_task(produce()) for _ in range(producers)]
    late = []
    end = loop.time() + seconds
    start, process = time.perf_counter(), ProcessCpu()
    while loop.time() < end:
        tick = time.perf_counter()
        await asyncio.sleep(0.001)
        # Clamped: a loop may round its timers and wake a little early.
        late.append(max(0.0, time.perf_counter() - tick - 0.001))
    running = False
    rate, cpu = served / (time.perf_counter() - start), process.per_call_us(served)
    await asyncio.gather(*tasks)
    late.sort()
    return {
        "tick_late_p50_ms": statistics.median(late) * 1e3,
        "tick_late_p99_ms": _p99(late) * 1e3,
        "calls_per_s": rate,
        "process_cpu_us_per_call": cpu,
    }


async def steady(call: Call, tasks: int, sleep: float, seconds: float) -> dict[str, float]:
    """``tasks`` tasks, each offloading ``time.sleep(sleep)`` back to back, as a server's.

    Calls per second, process CPU per call (the pool threads' and the loop's), and the
    threads started while the stream runs: after a warm-up as long as the measurement,
    with no gap between the two, so the stream's own pool is measured, not its growth.
    """
    first_seen: dict[threading.Thread, float] = {}
    running = True
    served = 0
    window = (math.inf, math.inf)

    def work() -> None:
        first_seen.setdefault(threading.current_thread(), time.perf_counter())
        time.sleep(sleep)

    async def serve() -> None:
        nonlocal served
        while running:
            await call(work)
            if window[0] <= time.perf_counter() < window[1]:
                served += 1

    workers = [asyncio.create_task(serve()) for _ in range(tasks)]
    await asyncio.sleep(seconds)  # the warm-up
    with ThreadSampler() as sampler:
        start, process = time.perf_counter(), ProcessCpu()
        window = (start, start + seconds)
        await asyncio.sleep(seconds)
        elapsed, cpu = time.perf_counter() - start, process.per_call_us(served)
    running = False
    await asyncio.gather(*workers)
    started = sum(start <= seen < start + elapsed for seen in first_seen.values())
    return {
        "calls_per_s": served / elapsed,
        "process_cpu_us_per_call": cpu,
        "threads_started_per_s": started / elapsed,
        "threads_started_per_call": started / max(served, 1),
        "peak_threads": sampler.peak - 1,  # less the loop's
    }


async def thread_start(call: Call, threads: int) -> dict[str, float]:
    """``threads`` calls that must all run at once, then their threads' retirement.

    Each call waits until all have started, so each takes a thread of its own; the
    figure runs until every thread but one (offload keeps one idle) has ended. Process
    CPU and wall time per thread started and retired: offload's growth against a thread
    per call, started raw (``_thread.start_new_thread``) and with ``Thread.start()``.
    """
    everyone = threading.Barrier(threads, timeout=30)
    before = _thread._count()
    start, process = time.perf_counter(), ProcessCpu()
    await asyncio.gather(*[call(everyone.wait) for _ in range(threads)])
    while _thread._count() > before + 1:
        await asyncio.sleep(0)
    wall = time.perf_counter() - start
    return {
        "wall_us_per_thread": wall / threads * 1e6,
        "process_cpu_us_per_thread": (time.process_time() - process._start) / threads * 1e6,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    measure: Measure
    sizes: dict[str, dict[str, Any]]
    """Keyword arguments of ``measure`` for each mode: smoke, quick, full."""
    repetitions: dict[str, int] = field(default_factory=dict)
    """Caps on the mode's repetitions, for the slow scenarios."""
    loops: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The loops to measure on, for the modes where not every loop is worth the time."""
    subprocess: bool = False
    """Measured in a fresh child process each time (see _child.py)."""
    implementations: tuple[str, ...] = ()
    """The implementations it measures, if not every one the run asks for."""
    baseline: str = BASELINE
    """What its ratios are to."""

    @property
    def description(self) -> str:
        return (self.measure.__doc__ or "").strip().splitlines()[0]


def _steady(tasks: int, sleep_ms: float, full_seconds: float) -> Scenario:
    rates = {"smoke": 0.05, "quick": full_seconds / 4, "full": full_seconds}
    return Scenario(
        f"steady_{tasks}x{sleep_ms:g}ms",
        steady,
        {mode: {"tasks": tasks, "sleep": sleep_ms / 1e3, "seconds": s} for mode, s in rates.items()},
        repetitions={"quick": 2},
    )


def _batch(size: int) -> Scenario:
    return Scenario(
        f"batch_{size}",
        batch,
        {mode: {"size": size} for mode in ("smoke", "quick", "full")},
        repetitions={"quick": 1} if size >= 10_000 else {},
    )


async def memory(call: Call, calls: int) -> dict[str, float]:
    """Peak RSS and threads for ``calls`` calls blocked at once, under each one's bound.

    Run in a fresh child process per implementation, so that the resident memory
    figure is the process's own and not what earlier scenarios left behind.
    """
    release = threading.Event()
    before, process = _rss_mib(), ProcessCpu()
    with ThreadSampler() as sampler:
        pending = [call(release.wait) for _ in range(calls)]
        gathered = asyncio.gather(*pending)
        await _until_thread_count_settles()
        rss = _rss_mib() - before
        release.set()
        await gathered
    return {
        "rss_mib": rss,
        "peak_threads": sampler.peak - 1,
        "process_cpu_us_per_call": process.per_call_us(calls),
    }


async def _until_thread_count_settles(quiet: float = 0.3, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    count, since = threading.active_count(), loop.time()
    while loop.time() - since < quiet and loop.time() < deadline:
        await asyncio.sleep(0.01)
        if threading.active_count() != count:
            count, since = threading.active_count(), loop.time()


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - not Linux


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "thread_start",
        thread_start,
        {"smoke": {"threads": 8}, "quick": {"threads": 32}, "full": {"threads": 64}},
        implementations=("offload", *THREAD_PER_CALL),
        baseline=RAW_THREAD,
    ),
    Scenario(
        "round_trip",
        round_trip,
        {"smoke": {"calls": 50}, "quick": {"calls": 1000}, "full": {"calls": 5000}},
    ),
    *(_batch(size) for size in (10, 100, 1_000, 10_000)),
    Scenario(
        "burst",
        burst,
        {
            "smoke": {"calls": 20, "seconds": 0.005},
            "quick": {"calls": 200, "seconds": 0.05},
            "full": {"calls": 200, "seconds": 0.05},
        },
        repetitions={"quick": 1, "full": 3},
        loops={"smoke": ("asyncio",), "quick": ("asyncio",)},
    ),
    Scenario(
        "bursty",
        bursty,
        {
            "smoke": {"bursts": 3, "size": 5, "seconds": 0.001, "gap": 0.005},
            "quick": {"bursts": 10, "size": 20, "seconds": 0.002, "gap": 0.02},
            "full": {"bursts": 40, "size": 20, "seconds": 0.002, "gap": 0.02},
        },
        repetitions={"quick": 1},
    ),
    Scenario(
        "gil_release",
        gil_release,
        {
            "smoke": {"buffers": 2, "mib": 0.25},
            "quick": {"buffers": 16, "mib": 1},
            "full": {"buffers": 32, "mib": 1},
        },
    ),
    Scenario(
        "cpu_bound",
        cpu_bound,
        {
            "smoke": {"calls": 2, "iterations": 10_000},
            # About 0.1 s a call on the GIL build, on a 2020s x86 core.
            "quick": {"calls": 8, "iterations": 1_000_000},
            "full": {"calls": 8, "iterations": 1_000_000},
        },
        repetitions={"quick": 2},
        implementations=("offload", *CPU_PEERS),
        baseline="offload",
    ),
    Scenario(
        "responsiveness",
        responsiveness,
        {
            "smoke": {"seconds": 0.05, "producers": 2},
            "quick": {"seconds": 0.3, "producers": 8},
            "full": {"seconds": 1.0, "producers": 8},
        },
        repetitions={"quick": 2},
    ),
    _steady(4, 0, 1.0),
    _steady(16, 0.5, 1.0),
    _steady(16, 2, 1.0),
    _steady(64, 5, 2.0),
    Scenario(
        "memory",
        memory,
        {"smoke": {"calls": 100}, "quick": {"calls": 10_000}, "full": {"calls": 10_000}},
        repetitions={"smoke": 1, "quick": 1, "full": 1},
        loops={"smoke": ("asyncio",), "quick": ("asyncio",)},
        subprocess=True,
    ),
)
