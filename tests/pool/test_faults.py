"""Faults injected where they can strike: a thread that cannot start, a delivery that
fails, a long queue of held calls whose pool closes, a call that raises. Each must fail
only the calls it strikes, with an error that says why, and leave the pool sound and
usable, holding nothing it no longer needs."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

import offload

from ..support.loops import LOOP_FACTORIES, Runner
from ..support.polling import wait_until
from ..support.pools import Gate, MakePool, assert_invariant, start_blocker
from ..support.seams import (
    outcomes_waiting,
    refuse_thread_starts,
    value_of,
    wrap_schedule_drain,
    wrap_settle,
    wrap_thread_starts,
)

# How long a test waits for an outcome before calling it lost (a liveness deadline,
# not a timing assertion: a sound pool delivers in milliseconds).
LOST_AFTER = 10


def test_thread_start_failure_fails_the_stranded_calls(
    run: Runner[None], pool: offload.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise RuntimeError("can't start new thread")

    async def main() -> None:
        refuse_thread_starts(monkeypatch, refuse)
        with pytest.raises(offload.ThreadStartError, match="could not start a thread") as info:
            await pool.run(int)
        assert isinstance(info.value.__cause__, RuntimeError)
        s = assert_invariant(pool)
        assert (s.threads, s.queued, s.starting) == (0, 0, 0)
        monkeypatch.undo()
        assert await pool.run(int, "5") == 5  # the pool is still usable

    run(main())


def test_thread_start_failure_in_the_chain_leaves_calls_to_running_threads(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = gate()

    def start_only_first(launch: Callable[[threading.Thread], None], thread: threading.Thread) -> None:
        if thread.name != "test-1":
            raise RuntimeError("can't start new thread")
        launch(thread)

    wrap_thread_starts(monkeypatch, start_only_first)

    async def main() -> None:
        calls = [pool.run(release.wait) for _ in range(3)]
        wait_until(lambda: pool.stats().starting == 0 and pool.stats().busy == 1, what="the chain to fail")
        s = assert_invariant(pool)
        assert (s.threads, s.queued) == (1, 2)
        release.set()
        assert await asyncio.gather(*calls) == [True, True, True]

    run(main())


def test_thread_start_failure_with_a_busy_thread_fails_no_call(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread is left to take the queued call when it finishes: failing the call would
    # fail one that can still run.
    release = gate()

    def refuse(*args: object) -> None:
        raise RuntimeError("can't start new thread")

    async def main() -> None:
        blocker = start_blocker(pool, release)
        refuse_thread_starts(monkeypatch, refuse)
        queued = pool.run(int, "3")
        s = assert_invariant(pool)
        assert (s.threads, s.busy, s.starting, s.queued) == (1, 1, 0, 1)
        monkeypatch.undo()
        release.set()
        assert await asyncio.gather(blocker, queued) == [True, 3]
        assert pool.stats().spawned == 1

    run(main())


@pytest.fixture
def thread_exceptions(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """What reaches ``threading.excepthook``, instead of pytest's own hook."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def test_a_failure_to_wake_the_loop_loses_no_thread_and_no_later_outcome(
    run: Runner[None],
    pool: offload.Pool,
    monkeypatch: pytest.MonkeyPatch,
    thread_exceptions: list[BaseException | None],
) -> None:
    # Steps:
    # 1. the first call's thread counts itself returning to the loop, then its delivery
    #    fails: waking the loop raises MemoryError (injected, once);
    # 2. the failure is reported as an uncaught thread exception would be, and the
    #    thread lives on, returning;
    # 3. the second call is handed to that thread; its delivery wakes the loop, which
    #    takes both outcomes.
    # Before the fix the thread died in step 2 while counted idle, so the second call
    # was handed to a dead thread and never ran; and the inbox kept its wake-up marked
    # pending, so no outcome reached that loop again.
    failures = [MemoryError("injected: cannot wake the loop")]

    def fail_once(schedule_drain: Callable[[Any], bool], inbox: Any) -> bool:
        if failures:
            raise failures.pop()
        return schedule_drain(inbox)

    wrap_schedule_drain(monkeypatch, fail_once)

    async def main() -> None:
        first = pool.run(int, "1")
        wait_until(lambda: len(thread_exceptions) == 1, what="the delivery failure to be reported")
        [error] = thread_exceptions
        assert isinstance(error, MemoryError)
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.completed) == (1, 1, 1)
        second = pool.run(int, "2")
        assert await asyncio.wait_for(asyncio.gather(first, second), LOST_AFTER) == [1, 2]
        assert pool.stats().spawned == 1

    run(main())


def test_a_faulty_outcome_strands_none_of_its_batch(
    loop_name: str, pool: offload.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    n, faulty = 8, 3

    def settle_or_fail(settle: Callable[[Any], None], call: Any) -> None:
        if value_of(call) == faulty:
            raise ValueError("broken outcome")
        settle(call)

    wrap_settle(monkeypatch, settle_or_fail)
    barrier = threading.Barrier(n, timeout=LOST_AFTER)
    reported: list[dict[str, Any]] = []

    def index(i: int) -> int:
        barrier.wait()
        return i

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        loop = asyncio.get_running_loop()
        calls = [pool.run(index, i) for i in range(n)]
        # Hold the loop's thread until every outcome waits in the inbox: one batch.
        wait_until(lambda: outcomes_waiting(loop) == n, what="all outcomes in the inbox")
        others = [call for i, call in enumerate(calls) if i != faulty]
        assert await asyncio.wait_for(asyncio.gather(*others), LOST_AFTER) == [
            i for i in range(n) if i != faulty
        ]
        assert not calls[faulty].done()
        calls[faulty].cancel()  # type: ignore[attr-defined]

    with asyncio.Runner(loop_factory=LOOP_FACTORIES[loop_name]) as runner:
        runner.run(main())
    [context] = reported
    assert context["message"] == "offload failed to deliver an outcome"
    assert isinstance(context["exception"], ValueError)


def test_held_calls_of_a_limiter_run_when_its_pool_closes(
    run: Runner[None],
    make_pool: MakePool,
    gate: Gate,
    thread_exceptions: list[BaseException | None],
) -> None:
    # Each finished call passes its place to the next held one, which the closed pool
    # runs: without nesting one call in another (2,000 nested hand-overs once exhausted
    # a pool thread's stack), and with a thread started only where none would take it.
    pool = make_pool(name="closing")
    limiter = offload.Limiter(1, pool=pool)
    release = gate()
    ran: list[int] = []

    async def main() -> None:
        running = limiter.run(release.wait)
        held = [limiter.run(ran.append, i) for i in range(2000)]
        wait_until(lambda: pool.stats().busy == 1, what="the first call to start")
        assert limiter.waiting == 2000
        pool.shutdown(wait=False)
        release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*held), LOST_AFTER)
        assert await running is True
        assert outcomes == [None] * 2000

    run(main())
    assert (limiter.running, limiter.waiting, ran, thread_exceptions) == (0, 0, list(range(2000)), [])
    assert pool.stats().spawned == 1


@pytest.fixture
def without_the_garbage_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


def _raise(error: type[BaseException]) -> NoReturn:
    raise error("from the thread")


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt, MemoryError])
@pytest.mark.usefixtures("without_the_garbage_collector")
def test_a_failed_call_is_freed_without_the_garbage_collector(
    run: Runner[weakref.ref[Any]], pool: offload.Pool, error: type[BaseException]
) -> None:
    # The error's traceback holds the pool thread's frames. Were one of them to hold the
    # call, which holds the error, only the garbage collector would free the call, the
    # thread's frames and its Thread object (on 3.13, its stack too). On 3.13t, where it
    # seldom runs, the soak ran out of memory maps after 900,000 calls that way.
    async def main() -> weakref.ref[Any]:
        call = pool.run(_raise, error)
        # Not raised here: its traceback would hold this frame, and this frame the call.
        await asyncio.wait([call])
        assert isinstance(call.exception(), error)
        return weakref.ref(call)

    freed = run(main())  # the loop closed: none of its callbacks holds the call now
    wait_until(lambda: freed() is None, what="the failed call to be freed")


@pytest.mark.usefixtures("without_the_garbage_collector")
def test_a_failed_executor_call_is_freed_without_the_garbage_collector() -> None:
    with offload.Executor(max_workers=1) as executor:
        future = executor.submit(_raise, ValueError)
        assert isinstance(future.exception(), ValueError)
        freed = weakref.ref(future)
        del future
        wait_until(lambda: freed() is None, what="the failed call to be freed")
