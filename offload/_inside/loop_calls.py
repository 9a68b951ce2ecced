"""Calls from a pool thread back into the event loop: the counterpart of the Lua note's
``luaT_vm_lock``, which takes the interpreter back for a moment.

Inside an offloaded call, ``call_on_loop(fn, *args)`` runs ``fn`` on the loop's thread and
``run_on_loop(async_fn, *args)`` runs a coroutine there, each returning the result to
the pool thread. If the offloaded call's awaiter is cancelled, the coroutine on the
loop is cancelled too, and the pool thread sees ``asyncio.CancelledError``. If the loop
is closed before it has run the function, or the coroutine to its end, the pool thread
sees RuntimeError, instead of waiting for ever (and interpreter exit with it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from .._calls.asyncio_call import AsyncioCall
from .._calls.body import describe
from .._pool.threads import LOOP_CHECK_INTERVAL
from .._pool.worker import current_work

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

__all__ = ["call_on_loop", "run_on_loop"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


def call_on_loop(fn: Callable[[*Ts], R], /, *args: *Ts, loop: asyncio.AbstractEventLoop | None = None) -> R:
    """Runs ``fn(*args)`` on the event loop's thread and returns its result.

    Examples:
        ```python
        def copy_rows(rows):
            for row in rows:
                call_on_loop(progress.update, 1)  # touches loop-only state safely
                write(row)
        ```

    Args:
        fn: A plain function; it runs on the loop, so it must not block.
        *args: Its positional arguments.
        loop: The loop to run on; by default, the loop awaiting the offloaded call
            this thread is running.

    Returns:
        What ``fn`` returned there; what it raised is raised here.

    Raises:
        RuntimeError: Called on the loop's own thread (it would wait for itself), or
            outside an offloaded call without ``loop``, or the loop is not running, or
            it was closed before it ran ``fn`` (it stopped for good: a loop stopped
            and run again runs ``fn`` then).
        asyncio.CancelledError: The offloaded call's awaiter was cancelled.
    """

    # A callback, not a task: one turn of the loop instead of two, and no Task to make.
    def schedule(target: asyncio.AbstractEventLoop) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        target.call_soon_threadsafe(_call_plain, future, fn, args)
        return future

    return _run_there(schedule, loop, "call_on_loop()")


def run_on_loop(
    async_fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, loop: asyncio.AbstractEventLoop | None = None
) -> R:
    """Runs ``await async_fn(*args)`` in a task on the event loop and returns its result.

    Examples:
        ```python
        def sync_handler(session, url):
            page = run_on_loop(session.get, url)  # an async client, from thread code
        ```

    The pool thread waits while the coroutine runs as a task of the loop, so the task
    can await what the loop serves (an async client, a lock of the loop's), and the
    thread's call goes on with the result.

    Args:
        async_fn: A coroutine function (or a callable that returns an awaitable).
        *args: Its positional arguments.
        loop: The loop to run on; by default, the loop awaiting the offloaded call
            this thread is running.

    Returns:
        What the awaited coroutine returned; what it raised is raised here.

    Raises:
        TypeError: ``async_fn`` is a plain function (use ``call_on_loop()``), or is
            not callable.
        RuntimeError: Called on the loop's own thread (it would wait for itself), or
            outside an offloaded call without ``loop``, or the loop is not running, or
            it was closed before the coroutine finished there.
        asyncio.CancelledError: The offloaded call's awaiter was cancelled, or a loop
            shut down by ``asyncio.run()`` cancelled the coroutine as it closed.
    """
    _check_async_fn(async_fn)
    coro = _await(async_fn, args)

    def schedule(target: asyncio.AbstractEventLoop) -> concurrent.futures.Future[R]:
        return asyncio.run_coroutine_threadsafe(coro, target)

    return _run_there(schedule, loop, "run_on_loop()", coro)


def _check_async_fn(async_fn: object) -> None:
    """Refuses, before anything runs on the loop, what cannot give an awaitable.

    A plain function or builtin would run on the loop, and only its result would then be
    found not awaitable; other callables (a class whose instances are awaitable, a
    partial) are known only by what they return, which ``_await`` checks.
    """
    if not callable(async_fn):
        raise TypeError(
            f"run_on_loop() needs a coroutine function, not {type(async_fn).__name__} {async_fn!r}"
        )
    kind: type = type(async_fn)
    plain = kind is BuiltinFunctionType or (
        kind in (FunctionType, MethodType) and not inspect.iscoroutinefunction(async_fn)
    )
    if plain:
        raise TypeError(
            f"run_on_loop() needs a coroutine function, and {describe(async_fn)} is a plain "
            "function: use call_on_loop() for it"
        )


def _call_plain(future: concurrent.futures.Future[R], fn: Callable[..., R], args: tuple[Any, ...]) -> None:
    """Runs on the loop's thread: ``fn(*args)``, its outcome set on ``future``."""
    if not future.set_running_or_notify_cancel():  # cancelled on its way to the loop
        return
    try:
        result = fn(*args)
    except BaseException as exc:
        future.set_exception(exc)
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: as a task does
            raise
        return
    if asyncio.iscoroutine(result):
        result.close()
        future.set_exception(
            TypeError(f"{describe(fn)} returned a coroutine: use run_on_loop() for coroutine functions")
        )
    else:
        future.set_result(result)


async def _await(async_fn: Callable[..., Awaitable[R]], args: tuple[Any, ...]) -> R:
    awaitable = async_fn(*args)
    if not inspect.isawaitable(awaitable):
        raise TypeError(
            f"run_on_loop() needs a coroutine function, and {describe(async_fn)} returned "
            f"{type(awaitable).__name__}: use call_on_loop() for plain functions"
        )
    return await awaitable


def _run_there(
    schedule: Callable[[asyncio.AbstractEventLoop], concurrent.futures.Future[R]],
    loop: asyncio.AbstractEventLoop | None,
    what: str,
    coro: Coroutine[Any, Any, R] | None = None,
) -> R:
    """Schedules the call on the loop with ``schedule`` and waits for its outcome;
    ``coro`` is the coroutine it hands the loop, closed here if the loop never gets it."""
    work = current_work()
    try:
        target = _target_loop(loop, work, what)
        future = schedule(target)
    except BaseException:  # refused, or the loop closed meanwhile
        if coro is not None:
            coro.close()
        raise
    if isinstance(work, AsyncioCall):
        work.follow(future)
    try:
        return _outcome(future, target, what, coro)
    except concurrent.futures.CancelledError:
        # The awaiter's cancel is requested before it cancels ``future`` (see follow()).
        if work is not None and work.cancel_requested:
            raise asyncio.CancelledError(f"{what} was cancelled with the offloaded call's awaiter") from None
        raise asyncio.CancelledError(
            f"{what}: its task was cancelled on the event loop, not with the offloaded call's "
            "awaiter (asyncio.run() cancels the tasks left when it ends)"
        ) from None


def _outcome(
    future: concurrent.futures.Future[R],
    loop: asyncio.AbstractEventLoop,
    what: str,
    coro: Coroutine[Any, Any, R] | None,
) -> R:
    """Waits for ``future``, which the loop settles; raises RuntimeError if the loop is
    closed first.

    ``close()`` of asyncio's loops and uvloop's drops the callbacks scheduled and not yet
    run: a loop that stops and closes between the call's scheduling and its running
    would never settle ``future``. Nothing tells of a close: the loop has no hook for
    it, and a finalizer on the dropped callback fires only once the callback is freed,
    which a reference cycle leaves to the garbage collector, and a free-threaded build
    may leave to the thread that made it: this one, blocked here. So the waiting thread
    looks at the loop every ``LOOP_CHECK_INTERVAL``, as a returning thread does (see
    _pool/threads.py): nothing runs on the loop's thread, nothing for calls that never
    call back, and a call back answered within the interval never looks at all.
    """
    while True:
        try:
            # exception(), not result(): it raises TimeoutError only for the wait, never
            # for the call's own TimeoutError, which it returns.
            future.exception(timeout=LOOP_CHECK_INTERVAL)
        except TimeoutError:
            if not loop.is_closed() or future.done():  # settled just before the close
                continue
            raise _closed_error(what, coro) from None
        return future.result()


def _closed_error(what: str, coro: Coroutine[Any, Any, Any] | None) -> RuntimeError:
    """The error for a call the loop dropped as it closed, or a coroutine it left unfinished."""
    if coro is None:
        when = "before it ran the function"
    elif inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()  # never started: else Python warns that it was never awaited
        when = "before it started the coroutine"
    else:
        # Its task was left pending: asyncio reports it destroyed, as it does any task
        # of a closed loop; closing it here would run its cleanup on this thread.
        when = "while the coroutine ran there, before it finished"
    return RuntimeError(
        f"{what}: the event loop was closed {when}; keep the loop running until the "
        "offloaded calls that call back into it have finished: await them before the "
        "loop ends"
    )


def _target_loop(
    loop: asyncio.AbstractEventLoop | None, work: object, what: str
) -> asyncio.AbstractEventLoop:
    running = asyncio._get_running_loop()
    if loop is None:
        loop = getattr(work, "loop", None) or running
    if loop is None:
        raise RuntimeError(
            f"{what} does not know which event loop to use: call it from inside a call "
            "run by offload() on asyncio or uvloop, or pass loop="
        )
    if running is loop:
        raise RuntimeError(
            f"{what} was called on the event loop's own thread, where it would wait for "
            "itself: call the function (or await it) directly instead"
        )
    if loop.is_closed() or not loop.is_running():
        raise RuntimeError(f"{what}: the event loop is not running")
    return loop
