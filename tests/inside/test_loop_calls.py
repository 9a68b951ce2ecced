"""Calls from a pool thread back into the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import NoReturn

import pytest

import offload

from ..support.loops import Runner
from ..support.polling import awaited, until, wait_until
from ..support.pools import Gate


def test_call_on_loop_runs_on_the_loops_thread(run: Runner[None], pool: offload.Pool) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        assert await pool.run(offload.call_on_loop, threading.get_ident) == loop_thread
        assert await pool.run(offload.call_on_loop, pow, 2, 5) == 32

    run(main())


def test_run_on_loop_awaits_a_coroutine_there(run: Runner[None], pool: offload.Pool) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def main() -> None:
        assert await pool.run(offload.run_on_loop, double, 21) == 42

    run(main())


def test_exceptions_travel_back_to_the_thread(run: Runner[None], pool: offload.Pool) -> None:
    def fail() -> NoReturn:
        raise KeyError("on the loop")

    def catch() -> str:
        try:
            offload.call_on_loop(fail)
        except KeyError as exc:
            return str(exc)
        return "not raised"

    async def main() -> None:
        assert await pool.run(catch) == "'on the loop'"
        with pytest.raises(TypeError, match="use run_on_loop"):
            await pool.run(offload.call_on_loop, asyncio.sleep, 0)

    run(main())


def test_cancelling_the_awaiter_cancels_the_call_on_the_loop(
    run: Runner[None], pool: offload.Pool, gate: Gate
) -> None:
    on_loop_started, on_loop_cancelled = gate(), gate()
    outcome: list[str] = []

    async def wait_forever() -> None:
        on_loop_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            on_loop_cancelled.set()
            raise

    def in_thread() -> None:
        try:
            offload.run_on_loop(wait_forever)
        except asyncio.CancelledError:
            outcome.append("cancelled")

    async def main() -> None:
        task = asyncio.ensure_future(awaited(pool.run(in_thread)))
        wait_until(lambda: pool.stats().busy == 1, what="the call to start")
        await until(on_loop_started.is_set)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(on_loop_cancelled.is_set)
        wait_until(lambda: outcome == ["cancelled"], what="the thread to see the cancellation")

    run(main())


def test_misuse_is_an_error_not_a_deadlock(run: Runner[None]) -> None:
    with pytest.raises(RuntimeError, match="does not know which event loop"):
        offload.call_on_loop(int)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="would wait for itself"):
            offload.call_on_loop(int, loop=loop)
        with pytest.raises(RuntimeError, match="on the event loop's own thread"):
            offload.call_on_loop(int)  # no loop named, outside an offloaded call
        # From a thread offload did not start, naming the loop works.
        assert await asyncio.to_thread(lambda: offload.call_on_loop(int, "4", loop=loop)) == 4

    run(main())


def test_run_on_loop_refuses_a_plain_function_before_running_it(
    run: Runner[None], pool: offload.Pool
) -> None:
    ran: list[str] = []

    def plain(text: str) -> int:
        ran.append(text)
        return len(text)

    class NotAwaitable:
        def __call__(self, text: str) -> int:
            ran.append(text)
            return len(text)

    async def main() -> None:
        with pytest.raises(TypeError, match=r"plain\b.*is a plain function: use call_on_loop"):
            await pool.run(offload.run_on_loop, plain, "abc")
        with pytest.raises(TypeError, match="len is a plain function"):
            await pool.run(offload.run_on_loop, len, "abc")
        with pytest.raises(TypeError, match="needs a coroutine function, not int"):
            await pool.run(offload.run_on_loop, 3)  # type: ignore[arg-type]
        # Known only by what it returns: it runs, then its result is refused.
        with pytest.raises(TypeError, match="NotAwaitable returned int: use call_on_loop"):
            await pool.run(offload.run_on_loop, NotAwaitable(), "de")

    run(main())
    assert ran == ["de"]


def test_works_inside_to_thread_after_install(run: Runner[None], default_pool: offload.Pool) -> None:
    async def main() -> None:
        offload.install()
        loop_thread = threading.get_ident()
        assert await asyncio.to_thread(offload.call_on_loop, threading.get_ident) == loop_thread

    run(main())


def test_a_stopped_loop_is_refused(loop_name: str) -> None:
    from ..support.loops import LOOP_FACTORIES

    loop = LOOP_FACTORIES[loop_name]()
    try:
        with pytest.raises(RuntimeError, match="not running"):
            offload.call_on_loop(int, loop=loop)
    finally:
        loop.close()
