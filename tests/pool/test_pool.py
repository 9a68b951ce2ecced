"""The pool's shape: growth on demand, at most one waiting thread, the bound, retiring."""

from __future__ import annotations

import asyncio
import contextvars
import math
import sys
import threading
from collections.abc import Callable

import anyio
import pytest

import offload

from ..support.loops import AnyioRun, Runner
from ..support.polling import wait_until, windows_closed
from ..support.pools import Gate, MakePool, assert_invariant, start_blocker
from ..support.scripts import run_script
from ..support.seams import wrap_thread_starts


def test_sequential_calls_run_on_one_thread(run: Runner[None], pool: offload.Pool) -> None:
    async def main() -> None:
        idents = {await pool.run(threading.get_ident) for _ in range(50)}
        assert len(idents) == 1
        # The loop has not turned since the last outcome: its thread is still returning.
        s = assert_invariant(pool)
        assert (s.threads, s.returning, s.idle, s.spawned, s.peak_threads, s.completed) == (1, 1, 0, 1, 1, 50)
        await windows_closed(pool)
        assert (pool.stats().threads, pool.stats().idle) == (1, 1)

    run(main())


@pytest.mark.parametrize("n", [2, 8, 32])
def test_blocked_calls_each_get_a_thread(run: Runner[None], pool: offload.Pool, n: int) -> None:
    # The barrier opens only when all n calls are inside it at once.
    barrier = threading.Barrier(n, timeout=10)

    async def main() -> None:
        idents = await asyncio.gather(*(pool.run(_pass_barrier, barrier) for _ in range(n)))
        assert len(set(idents)) == n
        s = assert_invariant(pool)
        assert (s.peak_threads, s.spawned) == (n, n)
        # All n finished: once the loop has turned, at most one thread stays, idle.
        await windows_closed(pool)
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.busy) == (1, 1, 0)

    run(main())


def _pass_barrier(barrier: threading.Barrier) -> int:
    barrier.wait()
    return threading.get_ident()


def test_last_idle_thread_retires_after_idle_timeout(run: Runner[None], make_pool: MakePool) -> None:
    pool = make_pool(idle_timeout=0.05, name="short")

    async def main() -> None:
        await pool.run(int)

    run(main())
    wait_until(lambda: pool.stats().threads == 0, what="the idle thread to retire")
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("short-")],
        what="the retired thread to end",
    )


def test_a_call_after_retirement_starts_a_new_thread(run: Runner[None], make_pool: MakePool) -> None:
    pool = make_pool(idle_timeout=0, name="zero")

    async def main() -> None:
        await pool.run(int)
        wait_until(lambda: pool.stats().threads == 0, what="the idle thread to retire")
        assert await pool.run(int, "7") == 7
        assert pool.stats().spawned == 2

    run(main())


def test_calls_beyond_max_threads_queue_in_fifo_order(
    run: Runner[None], make_pool: MakePool, gate: Gate
) -> None:
    pool = make_pool(max_threads=1)
    release = gate()
    started: list[int] = []

    async def main() -> None:
        blocker = start_blocker(pool, release)
        queued = [pool.run(started.append, i) for i in range(10)]
        s = assert_invariant(pool)
        assert (s.threads, s.queued) == (1, 10)
        release.set()
        await asyncio.gather(blocker, *queued)
        assert started == list(range(10))
        assert pool.stats().peak_threads == 1

    run(main())


def test_the_bound_holds_under_a_large_burst(run: Runner[None], make_pool: MakePool, gate: Gate) -> None:
    pool = make_pool(max_threads=3)
    release = gate()

    async def main() -> None:
        calls = [pool.run(release.wait) for _ in range(1000)]
        wait_until(lambda: pool.stats().busy == 3, what="three busy threads")
        s = assert_invariant(pool)
        assert (s.threads, s.queued) == (3, 997)
        release.set()
        await asyncio.gather(*calls)
        assert pool.stats().peak_threads == 3

    run(main())


def test_no_thread_waits_for_the_thread_it_starts(
    run: Runner[None], pool: offload.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Thread.start() waits for the new thread to run: the pool never calls it, and starts
    # its threads without that wait (through the seam wrap_thread_starts), the first from
    # the loop's thread, each next one from the thread before it. The first is held until
    # every call is queued: on a free-threaded build it could otherwise take its call
    # before the next is submitted, which then rightly starts a thread from the loop's.
    waited: list[str] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: waited.append(thread.name))
    starters: list[int] = []
    held: list[Callable[[], None]] = []
    loop_thread = threading.get_ident()

    def recording(launch: Callable[[threading.Thread], None], thread: threading.Thread) -> None:
        starters.append(threading.get_ident())
        if starters[-1] == loop_thread:
            held.append(lambda: launch(thread))
        else:
            launch(thread)

    wrap_thread_starts(monkeypatch, recording)
    barrier = threading.Barrier(4, timeout=10)

    async def main() -> None:
        calls = [pool.run(barrier.wait) for _ in range(4)]
        assert len(held) == 1
        held.pop()()
        await asyncio.gather(*calls)

    run(main())
    assert waited == []
    assert len(starters) == 4
    assert starters.count(threading.get_ident()) == 1


def test_a_finished_thread_exits_if_another_is_waiting(
    run: Runner[None], pool: offload.Pool, gate: Gate
) -> None:
    a_release, b_release = gate(), gate()

    async def main() -> None:
        a = pool.run(a_release.wait)
        b = pool.run(b_release.wait)
        wait_until(lambda: pool.stats().busy == 2, what="two busy threads")
        a_release.set()
        await a
        await windows_closed(pool)  # a's thread, not taken by a next call, is idle
        assert (pool.stats().threads, pool.stats().idle) == (2, 1)
        b_release.set()
        await b
        await windows_closed(pool)  # b's thread, not taken either, finds a's waiting: it exits
        s = assert_invariant(pool)
        assert (s.threads, s.idle) == (1, 1)

    run(main())


def test_stats_is_a_frozen_snapshot(pool: offload.Pool) -> None:
    s = pool.stats()
    assert s == offload.PoolStats(0, 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(AttributeError):
        s.threads = 3  # type: ignore[misc]


def test_repr_and_properties(make_pool: MakePool) -> None:
    pool = make_pool(max_threads=4, idle_timeout=math.inf, name="db")
    assert (pool.name, pool.max_threads, pool.idle_timeout, pool.closed) == ("db", 4, math.inf, False)
    assert repr(pool) == "<offload.Pool 'db' open max_threads=4 threads=0 busy=0 queued=0>"
    pool.shutdown()
    assert pool.closed
    assert "closed" in repr(pool)


def test_an_infinite_idle_timeout_keeps_the_idle_thread(run: Runner[None], make_pool: MakePool) -> None:
    pool = make_pool(idle_timeout=math.inf)

    async def main() -> None:
        await pool.run(int)

    run(main())
    assert pool.stats().idle == 1
    pool.shutdown()  # wakes it: nothing is left behind
    assert pool.stats().threads == 0


def test_an_idle_timeout_longer_than_a_thread_can_wait_keeps_the_idle_thread(
    run: Runner[None], make_pool: MakePool
) -> None:
    # Such a timeout killed the idle thread (OverflowError) while the pool counted it idle:
    # the next call, handed to it, never ran, and exit waited for it for ever.
    pool = make_pool(idle_timeout=sys.maxsize, name="huge")
    assert pool.idle_timeout == math.inf

    async def main() -> None:
        await pool.run(int)
        await windows_closed(pool)
        async with asyncio.timeout(10):
            assert await pool.run(int, "2") == 2

    run(main())
    assert assert_invariant(pool).spawned == 1


def test_default_bound_is_documented_value() -> None:
    assert offload.Pool().max_threads == offload.DEFAULT_MAX_THREADS == 256
    assert offload.Pool().idle_timeout == offload.DEFAULT_IDLE_TIMEOUT == 10.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_threads": 0}, ValueError, "max_threads must be at least 1, not 0"),
        ({"max_threads": -3}, ValueError, "max_threads must be at least 1"),
        ({"max_threads": 2.5}, TypeError, "max_threads must be an int, not float"),
        ({"max_threads": True}, TypeError, "max_threads must be an int, not bool"),
        ({"max_threads": "8"}, TypeError, "max_threads must be an int, not str"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout must be >= 0"),
        ({"idle_timeout": math.nan}, ValueError, "idle_timeout must be >= 0"),
        ({"idle_timeout": "10"}, TypeError, "idle_timeout must be a number of seconds, not str"),
        ({"name": ""}, TypeError, "Pool name must be a non-empty str"),
        ({"name": 3}, TypeError, "Pool name must be a non-empty str"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        offload.Pool(**kwargs)  # type: ignore[arg-type]


class TestShutdown:
    def test_calls_after_shutdown_raise(self, run: Runner[None], pool: offload.Pool) -> None:
        pool.shutdown()

        async def main() -> None:
            with pytest.raises(offload.PoolClosedError, match="pool 'test' is shut down"):
                pool.run(int)

        run(main())
        assert assert_invariant(pool).queued == 0

    def test_is_idempotent_and_a_context_manager(self, run: Runner[None]) -> None:
        async def main() -> None:
            with offload.Pool() as pool:
                assert await pool.run(int, "3") == 3
            assert pool.closed
            pool.shutdown()
            pool.shutdown(wait=False)

        run(main())

    # The deadlock reported: a call waits for the loop (call_on_loop) while the block's
    # exit, on the loop's thread, waits for the call. In a child interpreter, so that the
    # old behaviour fails the test by its timeout instead of hanging it.
    DEADLOCK = """
        import asyncio, threading, offload

        exiting = threading.Event()

        def needs_the_loop():
            exiting.wait()  # set as the block ends: the call is in flight then, for sure
            return offload.call_on_loop(int, "5")

        def fails():
            raise ValueError("boom")

        async def main():
            pool = offload.Pool(name="block")
            try:
                {with_} pool:
                    waiting = pool.run(needs_the_loop)
                    try:
                        await pool.run(fails)
                    finally:
                        exiting.set()
            except BaseException as exc:
                print(type(exc).__name__, str(exc).split(":")[0][:60])
            print("result", await waiting, "threads", pool.stats().threads, "closed", pool.closed)

        asyncio.run(main())
        """

    def test_async_with_waits_without_blocking_the_loop(self) -> None:
        result = run_script(self.DEADLOCK.replace("{with_}", "async with"), timeout=30)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["ValueError boom", "result 5 threads 0 closed True"]

    def test_async_with_on_every_backend(self, anyio_run: AnyioRun) -> None:
        async def main() -> offload.Pool:
            async with offload.Pool(name="scoped") as pool:
                assert await pool.run(int, "4") == 4
            return pool

        pool = anyio_run(main)
        assert pool.closed
        assert pool.stats().threads == 0

    def test_with_on_the_loops_thread_refuses_to_wait_for_running_calls(self) -> None:
        result = run_script(self.DEADLOCK.replace("{with_}", "with"), timeout=30)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("RuntimeError a 'with' block of <offload.Pool 'block' closed"), lines
        assert lines[1].startswith("result 5 threads"), lines  # shut down, not waited for

    # A block that ends on one of the pool's own threads (here, in an event loop run by one
    # of its calls): waiting for the pool's threads there would wait for that thread too.
    OWN_THREAD = r"ended on one of that pool's own threads.*shut down without waiting"

    def test_async_with_in_a_thread_of_the_pool_refuses_to_wait_for_itself(
        self, anyio_run: AnyioRun, pool: offload.Pool
    ) -> None:
        async def inside() -> None:
            # Bounded: the old deadlock fails the test, and its cancelled wait lets go.
            with anyio.fail_after(10):
                async with pool:
                    pass

        async def main() -> None:
            with pytest.raises(RuntimeError, match=self.OWN_THREAD):
                # In a context of its own: the call's, copied from this loop's, says that
                # an async library runs (sniffio's), and anyio.run() would refuse to nest.
                await pool.run(contextvars.Context().run, anyio_run, inside)

        anyio_run(main)
        assert pool.closed
        wait_until(lambda: pool.stats().threads == 0, what="the pool's thread to leave")

    @pytest.mark.parametrize("on_a_loop", [False, True], ids=["no-loop", "on-a-loop"])
    def test_with_in_a_thread_of_the_pool_says_the_same(
        self, run: Runner[None], pool: offload.Pool, on_a_loop: bool
    ) -> None:
        def inside() -> None:
            with pool:
                pass

        async def on_a_loop_inside() -> None:
            inside()

        async def main() -> None:
            call = pool.run(asyncio.run, on_a_loop_inside()) if on_a_loop else pool.run(inside)
            with pytest.raises(RuntimeError, match=self.OWN_THREAD):
                await call

        run(main())
        assert pool.closed
        wait_until(lambda: pool.stats().threads == 0, what="the pool's thread to leave")

    def test_without_wait_returns_at_once(self, run: Runner[None], pool: offload.Pool, gate: Gate) -> None:
        release = gate()

        async def main() -> None:
            call = start_blocker(pool, release)
            pool.shutdown(wait=False)
            assert pool.stats().threads == 1
            release.set()
            assert await call is True
            wait_until(lambda: pool.stats().threads == 0, what="the thread to leave")

        run(main())

    def test_waiting_from_a_pool_thread_is_refused(self, run: Runner[None], pool: offload.Pool) -> None:
        async def main() -> None:
            with pytest.raises(RuntimeError, match="would wait for itself"):
                await pool.run(pool.shutdown)
            await pool.run(pool.shutdown, wait=False)
            assert pool.closed

        run(main())
