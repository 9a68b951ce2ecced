"""``with`` and ``async with`` for what has ``shutdown(wait=True)``: pools and the fronts
beyond threads.

A blocking ``with`` exit on an event loop's thread is the stall offload exists to prevent,
and a deadlock when a call still running waits for that loop (``call_on_loop()``). So on a
loop's thread a ``with`` block waits only when nothing is in flight, and otherwise shuts
down without waiting and says to use ``async with``, whose exit waits on a thread of its
own while the loop runs on.

Neither block waits on one of a pool's own threads (in a loop run by one of its calls,
say): the wait would include the thread that waits, whatever the block, so there both
shut down without waiting and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn, Self

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["ShutsDownOnExit"]


class ShutsDownOnExit:
    """A base whose ``with`` and ``async with`` blocks end in ``shutdown(wait=True)``."""

    __slots__ = ()

    if TYPE_CHECKING:  # each subclass has its own

        def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None: ...

        def _calls_in_flight(self) -> int:
            """Calls submitted and not finished."""

    def _waits_for_this_thread(self) -> bool:
        """Whether ``shutdown(wait=True)`` would wait for the calling thread: one of a
        pool's own. A front waits for its calls, which run on an executor's threads or
        processes that it does not tell apart: False."""
        return False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._waits_for_this_thread():
            self._refuse_to_wait_for_itself("a 'with'")
        if _on_an_event_loop() and self._calls_in_flight():
            self.shutdown(wait=False)
            raise RuntimeError(
                f"a 'with' block of {self!r} ended on the event loop's thread with calls still "
                "running: waiting for them there would stall the loop, or deadlock if one waits "
                "for it; it was shut down without waiting. Use 'async with' in async code"
            )
        self.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._waits_for_this_thread():  # the wait would include the thread running this loop
            self._refuse_to_wait_for_itself("an 'async with'")
        self.shutdown(wait=False)  # at once: no call is taken after the block
        await _wait_in_a_thread(self.shutdown)

    def _refuse_to_wait_for_itself(self, block: str) -> NoReturn:
        self.shutdown(wait=False)
        raise RuntimeError(
            f"{block} block of {self!r} ended on one of that pool's own threads, which "
            "waiting for the pool would wait for; it was shut down without waiting. End "
            "the block outside the pool, or use another pool inside its calls"
        )


def _on_an_event_loop() -> bool:
    """Whether an asyncio loop or a trio run is running in this thread."""
    if asyncio._get_running_loop() is not None:
        return True
    trio: Any = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())


async def _wait_in_a_thread(wait: Callable[[], None]) -> None:
    """Runs ``wait()`` on a thread of its own and awaits it while the loop runs on: not on
    a pool's thread (it may be the very pool it waits for), nor on trio's thread cache
    (which would keep an idle thread for 10 s)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        done: asyncio.Future[None] = loop.create_future()
        _start(wait, lambda error: loop.call_soon_threadsafe(_settle, done, error), RuntimeError)
        await done
        return
    import trio

    token = trio.lowlevel.current_trio_token()
    finished = trio.Event()
    errors: list[BaseException] = []

    def tell_trio(error: BaseException | None) -> None:
        errors.extend([error] if error is not None else [])
        token.run_sync_soon(finished.set)

    _start(wait, tell_trio, trio.RunFinishedError)
    await finished.wait()
    if errors:
        raise errors[0]


def _start(
    wait: Callable[[], None], tell: Callable[[BaseException | None], object], loop_gone: type[Exception]
) -> None:
    """Starts a thread that runs ``wait()``, then ``tell``s its error or None."""

    def target() -> None:
        error: BaseException | None = None
        try:
            wait()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(loop_gone):  # the loop closed meanwhile: nobody awaits
            tell(error)

    threading.Thread(target=target, name="offload-shutdown", daemon=True).start()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the awaiter was cancelled; the shutdown went on without it
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
