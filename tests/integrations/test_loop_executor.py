"""run_in_executor() on a loop install() set up: each call awaited as offload()'s are,
with run_in_executor's semantics kept."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import pytest

import offload

from ..support.loops import Runner
from ..support.pools import CancelWatch, Gate, MakePool, start_blocker
from ..support.seams import gather_in_one_wakeup


@pytest.fixture
def one_thread(make_pool: MakePool) -> Iterator[offload.Pool]:
    """A default pool of one thread, for calls to queue behind a blocked one."""
    previous = offload.set_default_pool(make_pool(max_threads=1, name="one"))
    yield offload.default_pool()
    offload.set_default_pool(previous)


def test_calls_are_asyncio_futures_with_their_outcomes(run: Runner[None], default_pool: offload.Pool) -> None:
    def fail() -> None:
        raise KeyError("no such row")

    async def main() -> None:
        offload.install()
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(None, divmod, 7, 2)
        assert isinstance(call, asyncio.Future)  # no concurrent.futures.Future to wrap
        assert await call == (3, 1)
        assert await asyncio.to_thread(divmod, 9, 4) == (2, 1)
        with pytest.raises(KeyError, match="no such row"):
            await asyncio.to_thread(fail)

    run(main())
    assert default_pool.stats().completed == 3


def test_outcomes_that_finish_together_wake_the_loop_once(
    run: Runner[None], default_pool: offload.Pool, drain_sizes: list[int]
) -> None:
    barrier = threading.Barrier(8, timeout=10)

    async def main() -> None:
        offload.install()
        calls = [asyncio.ensure_future(asyncio.to_thread(barrier.wait)) for _ in range(8)]
        await asyncio.sleep(0)  # each task submits its call
        assert sorted(await gather_in_one_wakeup(calls, drain_sizes)) == list(range(8))

    run(main())


def test_shutdown_default_executor_waits_for_the_calls(
    run: Runner[None], default_pool: offload.Pool, gate: Gate
) -> None:
    release = gate()

    async def main() -> None:
        offload.install()
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(None, release.wait)
        shutting = asyncio.ensure_future(loop.shutdown_default_executor())
        for _ in range(10):  # it cannot finish while the call runs, however long this takes
            await asyncio.sleep(0)
        assert not shutting.done()
        release.set()
        assert await running is True
        await shutting
        with pytest.raises(RuntimeError):
            await asyncio.to_thread(int)

    run(main())


def test_cancelling_a_queued_call_means_it_never_runs(
    run: Runner[None], one_thread: offload.Pool, gate: Gate
) -> None:
    release = gate()
    ran: list[str] = []

    async def main() -> None:
        offload.install()
        loop = asyncio.get_running_loop()
        blocker = start_blocker(one_thread, release)
        queued = loop.run_in_executor(None, ran.append, "queued")
        assert one_thread.stats().queued == 1
        queued.cancel()
        assert one_thread.stats().queued == 0
        release.set()
        assert await blocker is True
        assert await asyncio.to_thread(ran.append, "after") is None

    run(main())
    assert ran == ["after"]


def test_a_running_call_whose_awaiter_is_cancelled_sees_it(
    run: Runner[None], default_pool: offload.Pool, gate: Gate
) -> None:
    watch = CancelWatch(gate)

    async def main() -> None:
        offload.install()
        call = asyncio.ensure_future(asyncio.to_thread(watch.call))
        await asyncio.to_thread(watch.started.wait)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        watch.release.set()

    run(main())  # asyncio.Runner's shutdown_default_executor() waits for the call, as exit would
    assert watch.seen == [True]


def test_cancel_futures_at_shutdown_cancels_the_queued_calls(
    run: Runner[None], one_thread: offload.Pool, gate: Gate
) -> None:
    release = gate()
    ran: list[str] = []

    async def main() -> None:
        executor = offload.install()
        loop = asyncio.get_running_loop()
        blocker = start_blocker(one_thread, release)
        queued = loop.run_in_executor(None, ran.append, "queued")
        # From another thread, as a program's shutdown code may call it.
        other = threading.Thread(target=executor.shutdown, kwargs={"wait": False, "cancel_futures": True})
        other.start()
        other.join()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert await blocker is True

    run(main())
    assert ran == []


def test_another_executor_takes_asyncios_own_path(run: Runner[None], default_pool: offload.Pool) -> None:
    def thread_name() -> str:
        return threading.current_thread().name

    async def main() -> None:
        offload.install()
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as mine:
            assert (await loop.run_in_executor(mine, thread_name)).startswith("mine")
            loop.set_default_executor(mine)
            assert (await asyncio.to_thread(thread_name)).startswith("mine")
            offload.install()  # again: routed to the new one
            assert (await asyncio.to_thread(thread_name)).startswith("default-")

    run(main())
    assert default_pool.stats().completed == 1


def test_a_closed_loop_refuses_as_asyncio_does(default_pool: offload.Pool) -> None:
    loop = offload.new_event_loop(use_uvloop=False)
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_in_executor(None, int)
