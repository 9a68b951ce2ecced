"""Threads returning to their loop: a steady stream of calls runs without thread churn.

A thread that delivers an outcome to an event loop returns there until the loop has run
the awaiter's continuation, and the loop's next call takes it back (the pool's point 3
and 4). These tests pin the thread counts that follow, on every loop and every way in.
No call counts as short here (seam ``calls_are_short``): a thread that finishes one
may watch the queue instead of returning (point 8), which test_watching.py pins.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import offload

from ..support.loops import AnyioRun, Runner
from ..support.polling import awaited, until, wait_until, windows_closed
from ..support.pools import Gate, MakePool, assert_invariant, start_blocker
from ..support.seams import (
    LOOPS_COUNTED,
    UNUSED_RETURNS,
    WINDOW_TURNS,
    IdleClock,
    calls_are_short,
    count_window_looks,
    gather_in_one_wakeup,
    loops_counted,
    never_look_at_loops,
)

TASKS = 4
CALLS = 100


@pytest.fixture(autouse=True)
def no_call_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    calls_are_short(monkeypatch, short=False)


async def calls_in_a_row(call: Callable[..., Awaitable[Any]], all_in: threading.Barrier) -> None:
    """A first call that meets every task's inside the pool, so that TASKS threads exist,
    then CALLS - 1 short calls one after the other."""
    await call(all_in.wait)
    for _ in range(CALLS - 1):
        await call(threading.get_ident)


def tasks_in_a_row(call: Callable[..., Awaitable[Any]]) -> list[Awaitable[None]]:
    all_in = threading.Barrier(TASKS, timeout=10)
    return [calls_in_a_row(call, all_in) for _ in range(TASKS)]


def assert_no_churn(pool: offload.Pool) -> None:
    # The first calls meet inside the pool: TASKS threads. After them, the old rule
    # started a thread for one call in five; returning threads start none. Not counted
    # exactly: on a free-threaded build a thread held up between counting itself
    # returning and delivering can be taken by another task's call first, and the
    # window of the thread that task left can close before the first task comes for it
    # (once in 400 calls, seen). Threads asked for are spawned or still starting.
    s = assert_invariant(pool)
    assert s.completed == TASKS * CALLS, s
    assert s.peak_threads >= TASKS, s
    assert s.spawned + s.starting <= TASKS + TASKS * CALLS // 100, s


def test_tasks_calling_in_a_row_keep_their_threads(anyio_run: AnyioRun, pool: offload.Pool) -> None:
    # Before threads returned, each of these calls found another task's thread idle
    # and left: the next call started a new one, about one call in five.
    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for calls in tasks_in_a_row(pool.run):
                tasks.start_soon(awaited, calls)
        assert_no_churn(pool)
        await until(lambda: pool.stats().returning + pool.stats().starting == 0)
        s = assert_invariant(pool)
        assert (s.threads, s.idle) == (1, 1)

    anyio_run(main)


def test_to_thread_through_offloads_executor_keeps_its_threads(run: Runner[None], pool: offload.Pool) -> None:
    # What offload.install() routes asyncio.to_thread and run_in_executor(None) through:
    # the outcome reaches the awaiter through two chained futures, two turns of the loop.
    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(offload.Executor(pool=pool))
        await asyncio.gather(*tasks_in_a_row(asyncio.to_thread))
        assert_no_churn(pool)

    run(main())


def test_limited_calls_in_a_row_keep_their_threads(run: Runner[None], pool: offload.Pool) -> None:
    limiter = offload.Limiter(TASKS, pool=pool)

    async def main() -> None:
        await asyncio.gather(*tasks_in_a_row(limiter.run))
        assert_no_churn(pool)

    run(main())


def test_a_call_in_the_window_takes_the_returning_thread_before_the_idle_one(
    run: Runner[None], pool: offload.Pool, gate: Gate
) -> None:
    release = gate()

    def wait_then_ident() -> int:
        release.wait()
        return threading.get_ident()

    async def main() -> None:
        blocked = start_blocker(pool, release)
        await pool.run(int)  # a second thread, which returns to the loop...
        await windows_closed(pool)  # ...and, not taken back, becomes the idle thread
        release.set()
        assert await blocked is True
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.idle) == (2, 1, 1)
        # The blocker's thread is returning: the next call takes it, not the idle one.
        ident = await pool.run(threading.get_ident)
        assert ident == await pool.run(wait_then_ident)
        await windows_closed(pool)  # unclaimed, with a thread idle already: it leaves
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.spawned) == (1, 1, 2)

    run(main())


def test_a_loop_that_does_not_turn_holds_its_returning_thread(
    run: Runner[None], pool: offload.Pool, idle_clock: IdleClock
) -> None:
    # The clock of the idle timeout stands still: only the loop's turning ends the window.
    async def main() -> None:
        await pool.run(int)
        wait_until(lambda: idle_clock.waiting == 1, what="the returning thread to wait")
        assert assert_invariant(pool).returning == 1
        await windows_closed(pool)
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.idle) == (1, 0, 1)

    run(main())


def test_a_loop_closed_before_it_turns_releases_its_returning_thread(pool: offload.Pool) -> None:
    # asyncio's loop stops after the turn in which stop() is called, with the callback
    # that would close the window still ready; close() then drops it.
    loop = asyncio.new_event_loop()

    async def call_then_stop() -> None:
        await pool.run(int)
        loop.stop()  # in the first turn after the outcome: the window is open

    try:
        task = loop.create_task(call_then_stop())
        loop.run_forever()
        assert task.done()
        assert pool.stats().returning == 1
    finally:
        loop.close()  # drops the callbacks that would have closed the window
    wait_until(lambda: pool.stats().returning == 0, what="the thread to see its loop closed")
    s = assert_invariant(pool)
    assert (s.threads, s.idle) == (1, 1)


def test_a_loop_that_goes_quiet_closes_the_window_at_once(
    run: Runner[None], pool: offload.Pool, loop_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the outcome, the awaiter waits for a future set from another thread once the
    # window has closed: no turn of the loop brings its next call. asyncio's loop, with
    # nothing else to run, closes the window at the first look (seam count_window_looks)
    # and waits; uvloop, which does not say, turns WINDOW_TURNS times first.
    looks = count_window_looks(monkeypatch)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake_once_closed() -> None:
            wait_until(lambda: pool.stats().returning == 0, what="the window to close")
            loop.call_soon_threadsafe(woken.set_result, None)

        await pool.run(int)
        waker = threading.Thread(target=wake_once_closed)
        waker.start()
        await woken
        waker.join()
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.idle) == (1, 0, 1), s

    run(main())
    assert looks == (list(range(WINDOW_TURNS - 1, -1, -1)) if loop_name == "uvloop" else [WINDOW_TURNS - 1])


def test_shutdown_releases_returning_threads(
    run: Runner[None], make_pool: MakePool, drain_sizes: list[int]
) -> None:
    pool = make_pool(name="closing")
    barrier = threading.Barrier(3, timeout=10)

    async def main() -> None:
        # Settled in one turn, so that no window closes before the gather resumes.
        await gather_in_one_wakeup([pool.run(barrier.wait) for _ in range(3)], drain_sizes)
        assert assert_invariant(pool).returning == 3
        pool.shutdown(wait=True)  # they leave at once: it waits for no loop
        assert assert_invariant(pool).threads == 0

    run(main())


def test_a_cancelled_awaiter_leaves_no_thread_returning(
    run: Runner[None], pool: offload.Pool, gate: Gate
) -> None:
    release = gate()

    async def main() -> None:
        call = start_blocker(pool, release)
        call.cancel()  # type: ignore[attr-defined]
        release.set()
        wait_until(lambda: pool.stats().completed == 1, what="the call to finish")
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.idle) == (1, 0, 1)

    run(main())


def test_calls_from_a_plain_thread_keep_the_idle_rule(make_pool: MakePool) -> None:
    pool = make_pool(name="plain")
    with offload.Executor(pool=pool) as executor:
        assert executor.submit(int, "3").result(timeout=10) == 3
    s = assert_invariant(pool)
    assert (s.threads, s.returning, s.idle) == (1, 0, 1)


@pytest.mark.parametrize("calls", [2, 8])
def test_calls_queued_for_threads_on_their_way_each_reach_a_thread(
    run: Runner[None], pool: offload.Pool, drain_sizes: list[int], calls: int
) -> None:
    # As many threads return to the loop as it then submits calls in one turn; then the
    # loop's thread blocks until all of them run, so that no window closes meanwhile.
    # Each call but the first may queue for a thread on its way (point 1), whose own
    # call blocks too: it must hand the queued one on before it runs its own, and so on
    # down the chain, so each reaches a returning thread, none waiting for a call
    # before it to end, and no thread starts for them.
    async def main() -> None:
        returned = threading.Barrier(calls, timeout=10)
        await gather_in_one_wakeup([pool.run(returned.wait) for _ in range(calls)], drain_sizes)
        assert assert_invariant(pool).returning == calls
        all_in = threading.Barrier(calls + 1, timeout=10)
        running = [pool.run(all_in.wait) for _ in range(calls)]
        all_in.wait()  # on the loop's thread, which does not turn until every call runs
        await asyncio.gather(*running)
        s = assert_invariant(pool)
        assert (s.spawned, s.completed) == (calls, 2 * calls)

    run(main())


def test_a_thread_returning_to_a_closed_loop_does_not_keep_it_alive(
    pool: offload.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop stops three turns after the outcome, before the window closes, and is
    # closed: its callbacks are dropped, and the thread stays returning to it until it
    # looks (never, here). What it holds of the call must not keep the loop alive.
    never_look_at_loops(monkeypatch)

    async def call() -> int:
        return await pool.run(int)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(call())
    loop.close()
    freed = weakref.ref(loop)
    del loop
    wait_until(lambda: gc.collect() >= 0 and freed() is None, what="the closed loop to be freed")
    assert assert_invariant(pool).returning == 1


BURST = 5


async def burst_returned(pool: offload.Pool, drain_sizes: list[int]) -> offload.PoolStats:
    """BURST calls that meet inside the pool, settled in one turn of the loop; the pool's
    figures as the gather resumes, before any window closes."""
    meet = threading.Barrier(BURST, timeout=10)
    drain_sizes.clear()
    await gather_in_one_wakeup([pool.run(meet.wait) for _ in range(BURST)], drain_sizes)
    return assert_invariant(pool)


def test_a_loop_that_lets_every_returning_thread_go_gets_one_back_at_a_time(
    run: Runner[None], pool: offload.Pool, drain_sizes: list[int]
) -> None:
    # Each burst's windows close unclaimed: one thread becomes the idle one, BURST - 1
    # leave, each a window of no use (seam UNUSED_RETURNS).
    async def main() -> None:
        for _ in range(math.ceil(UNUSED_RETURNS / (BURST - 1))):
            assert (await burst_returned(pool, drain_sizes)).returning == BURST
            await windows_closed(pool)
        # Now the first thread to finish returns, the next becomes the idle thread, the
        # others leave at once, with no window and no wake.
        s = await burst_returned(pool, drain_sizes)
        assert (s.threads, s.returning, s.idle) == (2, 1, 1)
        # The loop calls within the window: its thread is of use, and all return again.
        await pool.run(int)
        await windows_closed(pool)
        assert (await burst_returned(pool, drain_sizes)).returning == BURST

    run(main())


def test_unused_returns_are_counted_for_so_many_loops(make_pool: MakePool) -> None:
    # Each loop's window closes unclaimed beside the idle thread: its thread leaves. The
    # counts of loops long gone are not kept for ever (seam loops_counted).
    pool = make_pool(name="many-loops")

    async def a_return_left_unused() -> None:
        meet = threading.Barrier(2, timeout=10)
        await asyncio.gather(pool.run(meet.wait), pool.run(meet.wait))
        await windows_closed(pool)

    for loops in range(1, LOOPS_COUNTED + 2):
        asyncio.run(a_return_left_unused())
        assert loops_counted(pool) == (loops - 1) % LOOPS_COUNTED + 1
