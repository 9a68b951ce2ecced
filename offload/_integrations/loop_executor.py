"""``run_in_executor()`` on a loop ``install()`` set up: its calls awaited as
``offload()``'s are.

asyncio's own ``run_in_executor()`` submits to the executor, gets a
``concurrent.futures.Future``, and chains an asyncio Future to it (``wrap_future``): two
futures, their callbacks, and a ``call_soon_threadsafe()`` per call, on top of offload's
own delivery. So ``install()`` gives the loop a ``run_in_executor()`` of its own, for the
executor it installed: each call is one object, at once the asyncio Future its awaiter
waits on and the pool's Work, and outcomes reach the loop in offload's batches, one
wake-up for many. It is what ``asyncio.to_thread``, ``run_in_executor(None, ...)`` and
``getaddrinfo()`` go through.

What they promise is kept: the call runs as the Executor runs it (its limits, its
context in the thread, its ``shutdown()``, which waits for these calls too, as
``shutdown_default_executor()`` expects); cancelling the awaiter of a queued call means it
never runs, and of a running one releases the awaiter at once while the call runs on (and
sees ``offload.cancelled()``); interpreter exit waits for a running one. Calls to
another executor, or once the program sets another default, go through asyncio's own
method.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._calls.asyncio_call import AsyncioCall
from .._calls.delivery import asyncio_inbox_for
from .executor import Executor, InFlightCall

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

__all__ = ["LoopCall", "route_default_calls"]


class LoopCall(AsyncioCall, InFlightCall):
    """A call of ``run_in_executor()`` on the executor ``install()`` set up."""

    __slots__ = ("_executor",)

    _executor: Executor

    def dropped(self) -> None:
        self._executor._finished(self)

    def cancel_if_queued(self) -> None:
        # From any thread (shutdown(cancel_futures=True)): the pool lets go of it now;
        # the Future, which only the loop's thread may touch, is cancelled there.
        if self._submitter._cancel(self):
            self._executor._finished(self)
            self._settle_on_loop(asyncio.Future.cancel)

    def fail_if_pending(self, error: BaseException) -> None:
        if self._submitter._cancel(self):
            self._executor._finished(self)
            self._settle_on_loop(asyncio.Future.set_exception, error)

    def _settle_on_loop(self, settle: Callable[..., object], *args: Any) -> None:
        loop = self.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, self, *args)

    def run(self) -> None:
        executor = self._executor
        # Not the submitter's context, which bind() copied: see Executor._thread_context.
        self._context = executor._thread_context()
        broken = executor._broken_reason  # read as ExecutorCall.run reads it
        if broken is None:
            AsyncioCall.run(self)
        else:
            self.forget()
            self._value, self._error = None, _broken(broken)
        del self  # no cycle through the error's traceback: see CallBody.run

    def deliver(self) -> None:
        AsyncioCall.deliver(self)
        self._executor._finished(self)


def _broken(reason: str) -> BaseException:
    from concurrent.futures.thread import BrokenThreadPool

    return BrokenThreadPool(reason)


def route_default_calls(loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
    """Gives ``loop`` a ``run_in_executor()`` that makes a LoopCall of each call to
    ``executor`` while it is the loop's default executor; asyncio's own method (or
    uvloop's) takes every other call. Called again, it routes to the new executor."""
    cls = type(loop)
    original_run: Callable[..., asyncio.Future[Any]] = cls.run_in_executor.__get__(loop, cls)
    original_set: Callable[[concurrent.futures.ThreadPoolExecutor], None] = cls.set_default_executor.__get__(
        loop, cls
    )
    default: list[concurrent.futures.ThreadPoolExecutor] = [executor]

    def run_in_executor(
        chosen: concurrent.futures.Executor | None, fn: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        if (chosen is None or chosen is executor) and default[0] is executor:
            if loop.is_closed():
                raise RuntimeError("Event loop is closed")  # asyncio's words
            submitter, inner = executor._submitter_for(fn)
            call = LoopCall(loop=loop)
            call.home = asyncio_inbox_for(loop)
            call._executor = executor
            call.bind(submitter, fn, args, {})
            executor._start(call, inner)
            return call
        return original_run(chosen, fn, *args)

    def set_default_executor(chosen: concurrent.futures.ThreadPoolExecutor) -> None:
        original_set(chosen)
        default[0] = chosen

    loop.run_in_executor = run_in_executor  # type: ignore[method-assign,assignment]
    loop.set_default_executor = set_default_executor  # type: ignore[method-assign,assignment]
