"""The hard interleavings, each forced in both orders with injected locks and gates.

A race that a test only hopes to hit proves nothing when it passes. Here each step is
held until the test lets it go (the steps are listed in each test), so the interleaving
named is the one that runs, every time, with the GIL or without.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import offload

from ..support.loops import LOOP_FACTORIES, Runner
from ..support.polling import wait_until, windows_closed
from ..support.pools import Gate, MakePool, assert_invariant, start_blocker
from ..support.scripts import run_script
from ..support.seams import IdleClock, wrap_schedule_drain


def test_the_gil_stays_off_on_a_free_threaded_build() -> None:
    # These races are only real where threads run at once: an extension module built
    # without free-threading support would turn the GIL back on for the whole process.
    if not hasattr(sys, "_is_gil_enabled"):
        pytest.skip("Python before 3.13 has no free-threaded build")
    import sysconfig

    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        pytest.skip("not a free-threaded build")
    assert not sys._is_gil_enabled()


class HoldingLock:
    """Stands in for a pool's lock and, on cue, holds the next pool thread that takes it.

    After ``hold()``, the next thread of the pool to reach the lock sets ``arrived`` and
    waits for ``proceed`` before it takes the lock, so the test's own thread can take
    the lock first. Other threads, and later ones, pass straight through.
    """

    def __init__(self, pool: offload.Pool) -> None:
        self._lock = pool._lock
        self._prefix = f"{pool.name}-"
        self._armed = threading.Event()
        self.arrived = threading.Event()
        self.proceed = threading.Event()

    def hold(self) -> None:
        self._armed.set()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._armed.is_set() and threading.current_thread().name.startswith(self._prefix):
            self._armed.clear()
            self.arrived.set()
            self.proceed.wait()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@pytest.fixture
def holding_lock(pool: offload.Pool, monkeypatch: pytest.MonkeyPatch) -> Iterator[HoldingLock]:
    lock = HoldingLock(pool)
    # The shutdown Condition keeps the real lock, which HoldingLock takes too.
    monkeypatch.setattr(pool, "_lock", lock)
    yield lock
    lock.proceed.set()  # a failing test must not leave the thread held


@pytest.fixture
def pool(make_pool: MakePool, idle_clock: IdleClock) -> offload.Pool:
    """A pool of one thread, whose idle timeout passes only when the test says."""
    return make_pool(max_threads=1, idle_timeout=10, name="race")


@pytest.mark.parametrize("waiting_as", ["idle", "returning"])
@pytest.mark.parametrize("first", ["the call", "the timeout"])
def test_a_call_submitted_as_a_waiting_threads_wait_ends(
    run: Runner[None],
    pool: offload.Pool,
    idle_clock: IdleClock,
    holding_lock: HoldingLock,
    first: str,
    waiting_as: str,
) -> None:
    # Steps:
    # 1. a call's thread waits: as the idle thread, once the loop has turned and its
    #    window closed; or as a thread returning to the loop, which does not turn (this
    #    coroutine holds it). A window opens and closes on the loop's thread, where calls
    #    from that loop claim returning threads: those two never race; the thread's own
    #    wait does. Its wait times out, and it is held before the lock, where it would
    #    retire;
    # 2a. "the call": the loop submits a call, which claims the thread under the lock;
    #     the thread then finds itself claimed and runs the call;
    # 2b. "the timeout": the thread retires first; the call then starts a new thread.
    # The call must run once either way, never be handed to a thread that has retired.
    async def main() -> None:
        await pool.run(int)
        if waiting_as == "idle":
            await windows_closed(pool)
        wait_until(lambda: idle_clock.waiting == 1, what=f"the {waiting_as} thread to wait")
        assert getattr(assert_invariant(pool), waiting_as) == 1
        holding_lock.hold()
        idle_clock.advance(pool.idle_timeout)
        wait_until(holding_lock.arrived.is_set, what="the timed-out thread to reach the lock")
        if first == "the call":
            call = pool.run(threading.get_ident)
            s = assert_invariant(pool)
            assert (s.threads, s.busy, s.idle, s.returning) == (1, 1, 0, 0)
            holding_lock.proceed.set()
        else:
            holding_lock.proceed.set()
            wait_until(lambda: pool.stats().threads == 0, what="the thread to retire")
            call = pool.run(threading.get_ident)
        await call
        await windows_closed(pool)
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.completed) == (1, 1, 2)
        assert s.spawned == (1 if first == "the call" else 2)

    run(main())


@pytest.mark.parametrize("first", ["the window", "the steal"])
def test_a_call_from_a_thread_at_the_bound_as_a_window_closes(
    run: Runner[None], pool: offload.Pool, holding_lock: HoldingLock, first: str
) -> None:
    # At max_threads, a call from another thread takes a thread returning to a loop,
    # rather than wait for that loop to turn (the pool's point 1). Steps:
    # 1. the pool's one thread returns to the loop; the window is open;
    # 2. a plain thread submits a call, and is held before the lock;
    # 3a. "the window": the loop turns, the window closes, the thread becomes the idle
    #     thread; the held submitter then claims it;
    # 3b. "the steal": the submitter claims the returning thread first; the window then
    #     closes on a thread that has left it, and changes nothing.
    # Either way the call runs on the one thread, and no thread starts.
    executor = offload.Executor(pool=pool)
    results: list[int] = []

    def submit_from_a_plain_thread() -> None:
        results.append(executor.submit(threading.get_ident).result(timeout=10))

    async def main() -> None:
        ident = await pool.run(threading.get_ident)
        holding_lock.hold()
        submitter = threading.Thread(target=submit_from_a_plain_thread, name=f"{pool.name}-submitter")
        submitter.start()
        wait_until(holding_lock.arrived.is_set, what="the submitter to reach the lock")
        if first == "the window":
            await windows_closed(pool)
            assert (pool.stats().idle, pool.stats().returning) == (1, 0)
            holding_lock.proceed.set()
            submitter.join(timeout=10)
        else:
            holding_lock.proceed.set()
            submitter.join(timeout=10)  # the loop does not turn meanwhile
            assert not submitter.is_alive(), "the call waited for the loop to turn"
            await windows_closed(pool)
        assert results == [ident]
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.spawned, s.completed) == (1, 1, 1, 2)

    run(main())


@pytest.mark.parametrize("first", ["the cancel", "the start"])
def test_cancellation_arriving_as_a_queued_call_starts(
    run: Runner[None], pool: offload.Pool, gate: Gate, holding_lock: HoldingLock, first: str
) -> None:
    # Steps:
    # 1. the one thread finishes a blocker while a call is queued, and is held before the
    #    lock, where it would take the queued call;
    # 2a. "the cancel": the loop cancels the queued call; the thread then finds the queue
    #     empty, and the call never runs;
    # 2b. "the start": the thread takes the call first; the cancel then finds it
    #     running: the awaiter is released at once, and the call sees offload.cancelled().
    release, started, go = gate(), gate(), gate()
    saw_cancelled: list[bool] = []

    def queued_call() -> None:
        started.set()
        go.wait()
        saw_cancelled.append(offload.cancelled())

    async def main() -> None:
        blocker = start_blocker(pool, release)
        call = pool.run(queued_call)
        assert pool.stats().queued == 1
        holding_lock.hold()
        release.set()
        wait_until(holding_lock.arrived.is_set, what="the finished thread to reach the lock")
        if first == "the cancel":
            assert call.cancel()  # type: ignore[attr-defined]
            holding_lock.proceed.set()
        else:
            holding_lock.proceed.set()
            wait_until(started.is_set, what="the queued call to start")
            assert call.cancel()  # type: ignore[attr-defined]
            go.set()
        assert await blocker is True
        with pytest.raises(asyncio.CancelledError):
            await call
        completed = 1 if first == "the cancel" else 2
        wait_until(lambda: pool.stats().completed == completed, what="the calls to finish")
        await windows_closed(pool)
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.busy, s.queued) == (1, 1, 0, 0)

    run(main())
    assert saw_cancelled == ([] if first == "the cancel" else [True])


def test_cancellation_arriving_as_a_limiter_hands_a_held_call_to_the_pool(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Steps:
    # 1. a Limiter of one place runs a call and holds a second;
    # 2. the first finishes, and its thread passes the place to the held call: the call
    #    has left the Limiter, and is held here before it reaches the pool;
    # 3. the loop cancels it: neither the Limiter nor the pool has it;
    # 4. it reaches the pool, cancelled: it must not run, and its place must be freed.
    # Before the fix, step 3 raised AttributeError (the call had no ``queued`` yet), and
    # had it not, the pool would have counted a cancelled call as queued for ever.
    limiter = offload.Limiter(1, pool=pool)
    release, arrived, proceed = gate(), gate(), gate()
    ran: list[str] = []
    submit = pool._submit

    def held_on_the_way(work: Any, **how: bool) -> None:
        if threading.current_thread().name.startswith("race-"):
            arrived.set()
            proceed.wait()
        submit(work, **how)

    monkeypatch.setattr(pool, "_submit", held_on_the_way)

    async def main() -> None:
        first = limiter.run(release.wait)
        held = limiter.run(ran.append, "held")
        release.set()
        wait_until(arrived.is_set, what="the held call to leave the Limiter")
        assert (limiter.running, limiter.waiting) == (1, 0)
        assert held.cancel()  # type: ignore[attr-defined]
        proceed.set()
        assert await first is True
        wait_until(lambda: limiter.running == 0, what="the place to be freed")
        assert await limiter.run(ran.append, "after") is None

    run(main())
    assert ran == ["after"]
    assert assert_invariant(pool).queued == 0


@pytest.mark.parametrize("first", ["the close", "the wake-up"])
def test_an_outcome_delivered_as_the_loop_closes(
    loop_name: str, pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    # Steps:
    # 1. a call runs; its loop stops;
    # 2a. "the close": the loop closes, then the call finishes: waking the loop fails,
    #     and the outcome is dropped;
    # 2b. "the wake-up": the call finishes and schedules the loop's wake-up, then the
    #     loop closes without running it.
    # Either way nothing is raised or reported anywhere, the thread goes on as the idle
    # thread, and the next loop of this thread gets its outcomes.
    release, scheduled = gate(), gate()

    def signalling(schedule_drain: Callable[[Any], bool], inbox: Any) -> bool:
        try:
            return schedule_drain(inbox)
        finally:
            scheduled.set()

    wrap_schedule_drain(monkeypatch, signalling)
    loop = LOOP_FACTORIES[loop_name]()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def submit() -> Any:
        return pool.run(release.wait)

    call = loop.run_until_complete(submit())
    if first == "the close":
        loop.close()
        release.set()
        wait_until(scheduled.is_set, what="the outcome to be delivered")
    else:
        release.set()
        wait_until(scheduled.is_set, what="the outcome to be delivered")
        loop.close()
    assert not call.done()
    assert reported == []

    async def next_call() -> int:
        return await pool.run(int, "5")

    with asyncio.Runner(loop_factory=LOOP_FACTORIES[loop_name]) as runner:
        assert runner.run(next_call()) == 5
    s = assert_invariant(pool)
    assert (s.threads, s.idle, s.spawned, s.completed) == (1, 1, 1, 2)


@pytest.mark.parametrize("cancel_queued", [False, True])
def test_shutdown_while_calls_are_queued_and_running(
    run: Runner[None], pool: offload.Pool, gate: Gate, cancel_queued: bool
) -> None:
    # Steps:
    # 1. one call runs, blocked, and two are queued behind it;
    # 2. another thread shuts the pool down, waiting; with cancel_queued, the queued
    #    calls are dropped at once, their awaiters cancelled;
    # 3. shutdown waits while the running call blocks; it is released, and shutdown
    #    returns only after every call that was not dropped has run.
    release = gate()
    ran: list[int] = []

    async def main() -> None:
        running = start_blocker(pool, release)
        queued = [pool.run(ran.append, i) for i in range(2)]
        closer = threading.Thread(target=pool.shutdown, kwargs={"cancel_queued": cancel_queued})
        closer.start()
        wait_until(lambda: pool.closed, what="shutdown to begin")
        closer.join(timeout=0.05)
        assert closer.is_alive(), "shutdown(wait=True) returned with a call still running"
        with pytest.raises(offload.PoolClosedError):
            pool.run(int)
        release.set()
        closer.join()
        assert pool.stats().threads == 0
        assert await running is True
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        if cancel_queued:
            assert [type(outcome) for outcome in outcomes] == [asyncio.CancelledError] * 2
        else:
            assert outcomes == [None, None]

    run(main())
    assert ran == ([] if cancel_queued else [0, 1])
    assert pool.stats().completed == (1 if cancel_queued else 3)


def test_shutdown_while_the_thread_for_a_queued_call_starts(
    run: Runner[None], pool: offload.Pool, holding_lock: HoldingLock
) -> None:
    # Steps:
    # 1. a call is queued, and the thread started for it is held before the lock, where
    #    it would take the call;
    # 2. the loop shuts the pool down, dropping the queued call;
    # 3. the thread finds nothing to run in a closed pool, and leaves it.
    ran: list[str] = []

    async def main() -> None:
        holding_lock.hold()
        call = pool.run(ran.append, "dropped")
        wait_until(holding_lock.arrived.is_set, what="the new thread to reach the lock")
        pool.shutdown(wait=False, cancel_queued=True)
        with pytest.raises(asyncio.CancelledError):
            await call
        holding_lock.proceed.set()
        wait_until(lambda: pool.stats().threads == 0, what="the thread to leave")

    run(main())
    assert ran == []
    assert pool.stats().spawned == 1


def test_fork_while_threads_are_busy_and_hold_the_locks() -> None:
    # Steps, in a child interpreter (a test process must not fork with threads):
    # 1. two pool threads run calls, one inside the pool's lock and one inside the lock
    #    that guards what a fork resets (a new loop's inbox joins it), and three calls
    #    are queued;
    # 2. the main thread forks;
    # 3. the child, where those threads do not exist and the locks they held would stay
    #    held for ever, must find empty, working pools, the queued calls not carried over;
    # 4. the parent releases its calls, and each of the five runs exactly once.
    result = run_script(
        """
        import asyncio, os, threading, time, warnings
        import offload
        from offload._base import fork as _fork  # the seam of the fork registry's lock

        pool = offload.Pool(max_threads=2, name="forked")
        # The loop's thread waits too: it takes the pool's lock to submit.
        all_submitted_and_running = threading.Barrier(3)
        release = threading.Event()
        holding = [threading.Event(), threading.Event()]
        ran = []

        def hold(lock, holding):
            all_submitted_and_running.wait()
            with lock:
                holding.set()
                release.wait()
            ran.append("held")
            return "held"

        def record(i):
            ran.append(i)
            return i

        async def start():
            calls = [pool.run(hold, pool._lock, holding[0])]
            calls.append(pool.run(hold, _fork._resets._lock, holding[1]))
            calls += [pool.run(record, i) for i in range(3)]
            all_submitted_and_running.wait()
            return calls

        loop = asyncio.new_event_loop()
        calls = loop.run_until_complete(start())
        for event in holding:
            event.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, on 3.12+
            pid = os.fork()
        if pid == 0:
            before = (pool.stats(), offload.default_pool().stats())

            async def child():
                fresh = offload.Pool(name="fresh")
                return [await pool.run(sum, [1, 2]), await offload.offload(len, "abc"),
                        await fresh.run(int, "4")]

            results = asyncio.run(child())
            empty = all((s.threads, s.busy, s.queued) == (0, 0, 0) for s in before)
            os._exit(0 if (empty, results, ran) == (True, [3, 3, 4], []) else 1)
        deadline = time.monotonic() + 30
        while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise SystemExit("the child hung: a lock held at the fork stayed held")
            time.sleep(0.01)
        release.set()
        results = loop.run_until_complete(asyncio.gather(*calls))
        print("child exit", os.waitstatus_to_exitcode(waited[1]))
        print("parent", results, sorted(ran, key=str), pool.stats().completed)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "child exit 0",
        "parent ['held', 'held', 0, 1, 2] [0, 1, 2, 'held', 'held'] 5",
    ]


def test_a_full_limiter_and_a_busy_executor_start_afresh_after_fork() -> None:
    # In a child interpreter: a Limiter of one place runs a blocked call, and an Executor
    # has one in flight, when the main thread forks. In the child neither call exists:
    # the Limiter must run a call at once, not hold it for ever behind the parent's, and
    # the Executor's shutdown(wait=True) must not wait for the parent's call.
    result = run_script(
        """
        import asyncio, os, threading, time, warnings
        import offload

        release = threading.Event()
        limiter = offload.Limiter(1)
        executor = offload.Executor(max_workers=2)

        async def start():
            blocked = limiter.run(release.wait)
            while limiter.running == 0 or offload.default_pool().stats().busy == 0:
                await asyncio.sleep(0.001)
            return blocked

        loop = asyncio.new_event_loop()
        blocked = loop.run_until_complete(start())
        in_flight = executor.submit(release.wait)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, on 3.12+
            pid = os.fork()
        if pid == 0:
            async def child():
                return await asyncio.wait_for(limiter.run(int, "7"), 10)

            ran = asyncio.run(child())
            executor.shutdown(wait=True)
            os._exit(0 if (ran, limiter.running, limiter.waiting) == (7, 0, 0) else 1)
        deadline = time.monotonic() + 30
        while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                raise SystemExit("the child hung on the parent's calls")
            time.sleep(0.01)
        release.set()
        print("child exit", os.waitstatus_to_exitcode(waited[1]))
        print("parent", loop.run_until_complete(blocked), in_flight.result(timeout=10))
        executor.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["child exit 0", "parent True True"]
