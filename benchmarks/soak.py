"""Soak: offloads a million calls or more in a mix meant to lose some, and counts them all.

python -m benchmarks.soak --calls 1000000

Rounds are drawn at random until ``--calls`` calls have been submitted:

- burst: up to twice ``max_threads`` calls at once, that return or raise;
- saturate: ``max_threads`` calls that block, with calls queued behind them; once every
  thread is blocked, some queued calls and some blocked ones are cancelled, then the
  rest are released;
- sequential: calls awaited one at a time, which the one idle thread takes;
- racing: calls cancelled as soon as they are submitted, which the idle thread may
  already be running;
- and now and then a pause until the idle thread retires, so that the next round
  starts from no thread at all.

Every call counts its runs; every awaiter checks its outcome. The report gives the
calls submitted, completed (their exact outcome delivered), cancelled, lost (neither),
run twice, run although cancelled while queued, the peak and final thread counts, and
resident memory. The exit status is 1 if a call was lost, wrong, run twice or run
after its cancel, or if more than one thread is left once the calls are done.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import offload
from offload._base.lock import gil_enabled

from ._runner import LOOPS
from ._scenarios import _rss_mib

__all__ = ["Soak", "main"]

# Seconds a round waits for its outcomes before it counts the missing ones lost; a
# sound pool needs milliseconds.
DEADLINE = 10.0


@dataclass
class Tally:
    submitted: int = 0
    completed: int = 0
    wrong: int = 0
    cancelled: dict[str, int] = field(default_factory=lambda: {"queued": 0, "running": 0, "racing": 0})

    @property
    def lost(self) -> int:
        return self.submitted - self.completed - self.wrong - sum(self.cancelled.values())


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class Soak:
    def __init__(self, calls: int, max_threads: int, seed: int) -> None:
        self.calls = calls
        self.max_threads = max_threads
        self.random = random.Random(seed)
        self.pool = offload.Pool(max_threads=max_threads, idle_timeout=0.05, name="soak")
        self.tally = Tally()
        # A cancelled call that raises has its error logged (the awaiter is gone): counted.
        self.logged = _Counter()
        logger = logging.getLogger("offload")
        logger.addHandler(self.logged)
        logger.propagate = False
        self.lock = threading.Lock()
        # Guarded by lock, written by the pool threads:
        self.runs = bytearray(calls)
        self.blocked = 0
        # Calls cancelled while certainly queued, none of which may ever run: a flag per
        # call, allocated up front so that the soak's own books do not grow its RSS.
        self.cancelled_queued = bytearray(calls)

    # --- what the calls run ---

    def ran(self, i: int) -> None:
        with self.lock:
            self.runs[i] = min(self.runs[i] + 1, 255)

    def returns(self, i: int) -> int:
        self.ran(i)
        return i

    def raises(self, i: int) -> int:
        self.ran(i)
        raise ValueError(i)

    def blocks(self, i: int, release: threading.Event) -> int:
        self.ran(i)
        with self.lock:
            self.blocked += 1
        release.wait()
        return i

    # --- rounds ---

    def submit(self, fn: Any, *args: Any) -> tuple[int, asyncio.Future[int]]:
        i = self.tally.submitted
        self.tally.submitted += 1
        future: asyncio.Future[int] = self.pool.run(fn, i, *args)  # type: ignore[assignment]
        return i, future

    def quick(self, count: int) -> list[tuple[int, asyncio.Future[int]]]:
        return [self.submit(self.random.choice((self.returns, self.raises))) for _ in range(count)]

    async def burst(self, count: int) -> None:
        await self.collect(self.quick(count), {})

    async def sequential(self, count: int) -> None:
        for _ in range(count):
            await self.collect(self.quick(1), {})

    async def racing(self, count: int) -> None:
        calls = self.quick(count)
        # In the loop's same step: no outcome can have arrived, so each cancel succeeds.
        cancelled = {i: "racing" for i, future in calls if self.random.random() < 0.5 and future.cancel()}
        await self.collect(calls, cancelled)

    async def saturate(self, count: int) -> None:
        release = threading.Event()
        blocking = min(self.max_threads, count)
        with self.lock:
            self.blocked = 0
        blockers = [self.submit(self.blocks, release) for _ in range(blocking)]
        queued = self.quick(count - blocking)
        deadline = time.monotonic() + DEADLINE
        while self.blocked_now() < blocking and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        cancelled: dict[int, str] = {}
        if self.blocked_now() == blocking:  # else the round's deadline tells the loss
            for kind, calls, chance in (("queued", queued, 0.3), ("running", blockers, 0.2)):
                cancelled.update(
                    {i: kind for i, future in calls if self.random.random() < chance and future.cancel()}
                )
            for i, kind in cancelled.items():
                self.cancelled_queued[i] = kind == "queued"
        release.set()
        await self.collect(blockers + queued, cancelled)

    def blocked_now(self) -> int:
        with self.lock:
            return self.blocked

    async def collect(self, calls: list[tuple[int, asyncio.Future[int]]], cancelled: dict[int, str]) -> None:
        """Waits for the round's outcomes and checks each against what its call does."""
        if not calls:
            return
        await asyncio.wait([future for _, future in calls], timeout=DEADLINE)
        for i, future in calls:
            if i in cancelled:
                self.tally.cancelled[cancelled[i]] += future.cancelled()
            elif not future.done():
                continue  # lost
            else:
                exact = not future.cancelled() and _outcome(future) in (i, ("ValueError", i))
                self.tally.completed += exact
                self.tally.wrong += not exact

    async def until_idle_thread_retires(self) -> None:
        await self._until(lambda: self.pool.stats().threads == 0)

    async def until_windows_close(self) -> None:
        """Until no thread is returning to the loop: the loop has turned since the last
        outcome, and every thread it did not take back is idle or gone."""
        await self._until(lambda: self.pool.stats().returning == 0)

    async def _until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def run(self) -> dict[str, Any]:
        rss_before = _rss_mib()
        rss_warm = None
        started = time.perf_counter()
        rounds = (self.burst, self.saturate, self.sequential, self.racing)
        weights = (0.4, 0.15, 0.2, 0.25)
        progress = 0
        while (left := self.calls - self.tally.submitted) > 0:
            round_ = self.random.choices(rounds, weights)[0]
            size = {self.sequential: 20, self.racing: self.max_threads}.get(round_, 2 * self.max_threads)
            await round_(min(left, self.random.randint(1, size)))
            if self.tally.lost:
                break  # the report tells where; more rounds would only wait out their deadlines
            if self.random.random() < 0.002:
                await self.until_idle_thread_retires()
            if rss_warm is None and self.tally.submitted >= self.calls // 100:
                rss_warm = _rss_mib()
            if self.tally.submitted * 10 // self.calls > progress:
                progress = self.tally.submitted * 10 // self.calls
                elapsed, rss = time.perf_counter() - started, _rss_mib()
                print(
                    f"  {self.tally.submitted:,} calls, {elapsed:.0f} s, RSS {rss:.1f} MiB", file=sys.stderr
                )
        wall = time.perf_counter() - started
        await self.until_windows_close()
        threads_at_end = self.pool.stats().threads
        await self.until_idle_thread_retires()
        self.pool.shutdown()
        gc.collect()
        with self.lock:
            twice = sum(runs > 1 for runs in self.runs)
            ran_after_cancel = sum(
                1
                for runs, cancelled in zip(self.runs, self.cancelled_queued, strict=True)
                if runs and cancelled
            )
        return {
            "calls submitted": self.tally.submitted,
            "completed (exact outcome)": self.tally.completed,
            "cancelled while queued (never ran)": self.tally.cancelled["queued"],
            "cancelled while running": self.tally.cancelled["running"],
            "cancelled at once (racing the thread)": self.tally.cancelled["racing"],
            "errors logged after a cancel": self.logged.count,
            "lost": self.tally.lost,
            "wrong outcome": self.tally.wrong,
            "ran twice": twice,
            "ran although cancelled while queued": ran_after_cancel,
            "peak threads": self.pool.stats().peak_threads,
            "threads started": self.pool.stats().spawned,
            "threads at the end": threads_at_end,
            "threads after the idle timeout": self.pool.stats().threads,
            "RSS before the first call (MiB)": round(rss_before, 1),
            "RSS after the first 1% (MiB)": round(rss_warm or rss_before, 1),
            "RSS at the end (MiB)": round(_rss_mib(), 1),
            "wall time (s)": round(wall, 1),
            "calls per second": round(self.tally.submitted / wall),
        }


def _outcome(future: asyncio.Future[int]) -> object:
    """The call's return value, or the name and arguments of its exception."""
    error = future.exception()
    return future.result() if error is None else (type(error).__name__, *error.args)


def failures(report: dict[str, Any]) -> list[str]:
    """What makes the soak fail: any call lost, wrong, doubled or run after its cancel."""
    bad = ("lost", "wrong outcome", "ran twice", "ran although cancelled while queued")
    found = [f"{name}: {report[name]}" for name in bad if report[name]]
    if report["threads at the end"] > 1:
        found.append(f"threads at the end: {report['threads at the end']} (at most 1)")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--max-threads", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="for the mix of rounds; timings vary anyway")
    parser.add_argument("--loop", choices=list(LOOPS), default="asyncio")
    arguments = parser.parse_args(argv)
    soak = Soak(arguments.calls, arguments.max_threads, arguments.seed)
    gil = "GIL" if gil_enabled() else "no GIL"
    print(
        f"soak: {arguments.calls:,} calls on {arguments.loop}, max_threads={arguments.max_threads}, "
        f"Python {sys.version.split()[0]} ({gil})"
    )
    with asyncio.Runner(loop_factory=LOOPS[arguments.loop]) as runner:
        report = runner.run(soak.run())
    for name, value in report.items():
        print(f"  {name:<40} {value:>12,}")
    found = failures(report)
    print(
        "FAILED: " + "; ".join(found)
        if found
        else "OK: every call ran once and was answered, or was cancelled"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
