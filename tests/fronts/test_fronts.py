"""offload.via(executor): any concurrent.futures executor, awaited as offload's own calls."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import anyio
import pytest

import offload

from ..support import remote_work
from ..support.loops import AnyioRun, Runner
from ..support.polling import until, wait_until
from ..support.pools import Gate
from ..support.seams import executor_future, executor_futures, gather_in_one_wakeup


def test_results_and_exceptions_with_their_traceback(run: Runner[None]) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(max_workers=2) as executor:
            front = offload.via(executor)
            assert await front.run(pow, 2, 10) == 1024
            assert await front(dict, a=1) == {"a": 1}  # calling the front is run()
            with pytest.raises(ValueError, match="from the executor") as info:
                await front(remote_work.fail, "from the executor")
            assert traceback.extract_tb(info.value.__traceback__)[-1].name == "fail"

    run(main())


@pytest.mark.parametrize("cancel", ["by its awaiter", "by shutdown(cancel_queued=True)"])
def test_a_queued_call_that_is_cancelled_never_runs(run: Runner[None], gate: Gate, cancel: str) -> None:
    started, release = gate(), gate()
    ran: list[str] = []

    def hold() -> bool:
        started.set()
        return release.wait()

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            front = offload.via(executor)
            running = front(hold)
            # Running before the cancel, which would otherwise take it too while it waits
            # in the executor's queue (seen on 3.13t).
            wait_until(started.is_set, what="the first call to start")
            queued = front(ran.append, "queued")
            executor_future_of_it = executor_future(front, queued)
            if cancel == "by its awaiter":
                queued.cancel()
            else:
                front.shutdown(wait=False, cancel_queued=True)
            assert executor_future_of_it.cancelled()
            release.set()
            assert await running is True
            with pytest.raises(asyncio.CancelledError):
                await queued
        assert ran == []
        assert executor_futures(front) == []

    run(main())


def test_results_finishing_together_wake_the_loop_once(run: Runner[None], drain_sizes: list[int]) -> None:
    n = 16
    barrier = threading.Barrier(n, timeout=10)

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=n) as executor:
            front = offload.via(executor)
            calls = [front(barrier.wait) for _ in range(n)]
            assert sorted(await gather_in_one_wakeup(calls, drain_sizes)) == list(range(n))

    run(main())


def test_shutdown_waits_for_its_calls_and_leaves_the_executor_open(run: Runner[None], gate: Gate) -> None:
    release = gate()

    def release_once_closed(front: offload.ExecutorFront) -> None:
        wait_until(lambda: front.closed, what="shutdown()")
        release.set()

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            async with offload.via(executor) as front:
                running = front(release.wait)
                queued = front(int, "7")
                in_flight = executor_futures(front)
                releaser = threading.Thread(target=release_once_closed, args=(front,))
                releaser.start()
            releaser.join()
            assert all(future.done() for future in in_flight)
            assert await running is True
            assert await queued == 7
            with pytest.raises(offload.PoolClosedError, match="is shut down"):
                front(int, "8")
            assert executor.submit(int, "9").result() == 9

    run(main())


def test_a_queued_call_cancelled_by_a_scope_never_runs(anyio_run: AnyioRun, gate: Gate) -> None:
    release, started = gate(), threading.Event()
    ran: list[str] = []

    def hold() -> None:
        started.set()
        release.wait()

    async def call_hold(front: offload.ExecutorFront) -> None:
        await front(hold)

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            front = offload.via(executor)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call_hold, front)
                await until(started.is_set)
                with anyio.move_on_after(0.01) as scope:
                    await front(ran.append, "queued")
                assert scope.cancelled_caught
                release.set()
            assert await front(int, "3") == 3
        assert ran == []

    anyio_run(main)


class _FaultyFuture(Future[Any]):
    def exception(self, timeout: float | None = None) -> BaseException | None:
        raise RuntimeError("this future cannot tell its outcome")


class _FaultyExecutor(Executor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = _FaultyFuture()
        future.set_result(None)
        return future


def test_a_future_that_cannot_tell_its_outcome_fails_the_call_rather_than_strand_it(
    run: Runner[None],
) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="cannot tell its outcome"):
            await offload.via(_FaultyExecutor())(int)

    run(main())


def test_via_needs_an_executor() -> None:
    with pytest.raises(TypeError, match=r"needs a concurrent\.futures\.Executor or a distributed\.Client"):
        offload.via(offload.Pool)  # type: ignore[arg-type]


def test_repr_shows_the_state_and_the_calls_in_flight() -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        front = offload.via(executor)
        assert repr(front).startswith("<offload.ExecutorFront open calls=0 on <concurrent.futures")
        front.shutdown()
        assert "closed" in repr(front)
