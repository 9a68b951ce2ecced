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
from ..support.scripts import run_script


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


def test_a_coroutine_cancelled_as_its_loop_ends_says_so(
    run: Runner[None], pool: offload.Pool, gate: Gate
) -> None:
    began = gate()
    outcome: list[str] = []

    async def forever() -> None:
        began.set()
        await asyncio.Event().wait()

    def in_thread() -> None:
        try:
            offload.run_on_loop(forever)
        except asyncio.CancelledError as exc:
            outcome.append(str(exc))

    async def main() -> None:
        pool.run(in_thread)  # never awaited: main ends with the coroutine still running
        await until(began.is_set)

    run(main())  # the runner cancels the tasks left, the coroutine's among them, as it ends
    wait_until(lambda: outcome != [], what="the thread to see the cancellation")
    assert outcome == [
        "run_on_loop(): its task was cancelled on the event loop, not with the offloaded "
        "call's awaiter (asyncio.run() cancels the tasks left when it ends)"
    ]


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


# A loop closed with a call back into it scheduled and not yet run: close() drops it, and
# the pool thread waited for ever, and interpreter exit with it. In a child interpreter,
# so that the old behaviour fails the test by its timeout instead of hanging it.
CLOSED_UNDER = """
    import asyncio, gc, threading, warnings
    import offload

    warnings.simplefilter("error")  # a coroutine never awaited would say so on stderr
    loop_name, scenario = LOOP_NAME, SCENARIO
    if loop_name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    pool = offload.Pool(name="back")
    go, scheduled = threading.Event(), threading.Event()

    # Tells when the pool thread's call back is in the loop's queue.
    schedule = loop.call_soon_threadsafe
    def spy(*args):
        handle = schedule(*args)
        if threading.current_thread().name.startswith("back-"):
            scheduled.set()
        return handle
    loop.call_soon_threadsafe = spy

    began = asyncio.Event()
    async def forever():
        began.set()
        await asyncio.Event().wait()

    def calls_back():
        go.wait()
        try:
            if scenario == "call_on_loop":
                offload.call_on_loop(print, "ran on the loop")
            else:
                offload.run_on_loop(forever)
        except RuntimeError as exc:
            print("RuntimeError", str(exc).split(";")[0])

    def start():
        pool.run(calls_back)  # never awaited: its outcome goes with the loop
        go.set()
        scheduled.wait()

    async def main():
        start()
        await began.wait()

    if scenario == "run_on_loop, started":
        loop.run_until_complete(main())  # leaves the coroutine's task pending
    else:
        # stop() before run_forever(): the loop runs the callbacks already scheduled
        # (start) and stops, leaving those scheduled meanwhile (the call back) for
        # close() to drop; asyncio and uvloop alike.
        loop.call_soon(start)
        loop.stop()
        loop.run_forever()
    loop.close()
    pool.shutdown(wait=True)
    gc.collect()
    print("reported", reported)
    """


@pytest.mark.parametrize(
    ("scenario", "error", "reported"),
    [
        pytest.param(
            "call_on_loop",
            "call_on_loop(): the event loop was closed before it ran the function",
            [],
            id="call_on_loop",
        ),
        pytest.param(
            "run_on_loop",
            "run_on_loop(): the event loop was closed before it started the coroutine",
            [],
            id="run_on_loop",
        ),
        pytest.param(
            "run_on_loop, started",
            "run_on_loop(): the event loop was closed while the coroutine ran there, before it finished",
            # asyncio's own report of the task the closed loop left pending, not offload's
            ["Task was destroyed but it is pending!"],
            id="run_on_loop-started",
        ),
    ],
)
def test_a_loop_closed_before_answering_is_an_error_not_a_deadlock(
    loop_name: str, scenario: str, error: str, reported: list[str]
) -> None:
    source = CLOSED_UNDER.replace("LOOP_NAME", repr(loop_name)).replace("SCENARIO", repr(scenario))
    result = run_script(source, timeout=20)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [f"RuntimeError {error}", f"reported {reported}"]
