"""offload under anyio, on asyncio, asyncio with uvloop, and trio: results, cancel
scopes with asyncio's semantics, and batched delivery on trio."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import offload

from ..support.loops import AnyioRun
from ..support.polling import until, wait_until
from ..support.pools import Gate, MakePool
from ..support.seams import outcomes_waiting_on_trio


async def call_in(pool: offload.Pool, fn: Callable[..., Any], *args: Any) -> Any:
    # Task groups start coroutine functions; offload() returns a Future on asyncio.
    return await pool.run(fn, *args)


def test_offload_returns_results(anyio_run: AnyioRun, pool: offload.Pool) -> None:
    async def main() -> None:
        assert await pool.run(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            await pool.run(divmod, 1, 0)
        assert await offload.Limiter(1, pool=pool).run(pow, 2, 3) == 8

    anyio_run(main)


def test_a_queued_call_cancelled_by_a_scope_never_runs(
    anyio_run: AnyioRun, make_pool: MakePool, gate: Gate
) -> None:
    pool = make_pool(max_threads=1)
    release = gate()
    ran: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call_in, pool, release.wait)
            await until(lambda: pool.stats().busy == 1)
            with anyio.move_on_after(0.01) as scope:
                await pool.run(ran.append, "queued")
            assert scope.cancelled_caught
            assert pool.stats().queued == 0
            release.set()
        assert ran == []

    anyio_run(main)


def test_a_running_call_releases_its_awaiter_and_sees_cancelled(
    anyio_run: AnyioRun, pool: offload.Pool, gate: Gate
) -> None:
    release, saw = gate(), gate()

    def long_call() -> None:
        release.wait()
        if offload.cancelled():
            saw.set()

    async def main() -> None:
        # Leaves the pool's thread idle (it parks before it delivers), so that the call
        # below is handed to it at once: running, not queued, whenever the deadline comes.
        await pool.run(int)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.01):
                await pool.run(long_call)
        assert pool.stats().busy == 1  # released while the thread still runs
        release.set()
        await until(saw.is_set)

    anyio_run(main)


def test_cancelling_a_task_group_cancels_its_calls(
    anyio_run: AnyioRun, pool: offload.Pool, gate: Gate
) -> None:
    release, stopped = gate(), gate()

    def until_cancelled() -> None:
        while not release.wait(0.001):
            if offload.cancelled():
                stopped.set()
                offload.check_cancelled()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call_in, pool, until_cancelled)
            await until(lambda: pool.stats().busy == 1)
            tasks.cancel_scope.cancel()
        await until(stopped.is_set)
        await until(lambda: pool.stats().busy == 0)

    anyio_run(main)


def test_results_finishing_together_wake_trio_once(pool: offload.Pool, drain_sizes: list[int]) -> None:
    import trio

    n = 8
    barrier = threading.Barrier(n, timeout=10)

    async def main() -> None:
        results: list[int] = []
        submitted = 0

        async def one() -> None:
            nonlocal submitted
            submitted += 1  # no checkpoint until the call is submitted
            results.append(await pool.run(barrier.wait))

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)
            while submitted < n:
                await trio.sleep(0)
            # Hold trio's thread until every outcome waits in the inbox.
            token = trio.lowlevel.current_trio_token()
            wait_until(lambda: outcomes_waiting_on_trio(token) == n)  # the seam
        assert sorted(results) == list(range(n))

    trio.run(main)
    assert drain_sizes == [n]
