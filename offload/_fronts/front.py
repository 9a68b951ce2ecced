"""Fronts: offloaded calls run by an executor instead of offload's thread pool.

``offload.via(executor)`` gives any ``concurrent.futures.Executor`` the awaitable that
offload gives its own pool: ``await offload.via(executor)(fn, *args)``. ``ProcessPool``
(processes.py) and ``Cluster`` (dask.py) are fronts that own what runs their calls.

A front is the Submitter (see _calls/body.py) of its calls, which are the same objects a pool
runs (an ``AsyncioCall``, or a ``TrioCall`` under trio; see _calls/), so they are
awaited, cancelled and delivered the same way:

1. ``_submit`` hands the call to the executor on the caller's thread and keeps the
   executor's future, for cancellation.
2. The executor completes that future on a thread of its own (ProcessPoolExecutor's
   manager thread, say). A done-callback there takes the outcome and puts the call in
   the loop's inbox, so calls that finish together wake the loop once, not once each
   (see _calls/delivery.py). (``_watch`` says how; a Cluster fetches on the Dask client's
   own loop.)
3. Cancelling the awaiter calls ``_cancel``, which cancels the executor's future: a call
   still queued in the executor never runs. A call already running finishes where it
   runs, and its outcome is dropped, as a running call's is on a pool.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from .._base.errors import PoolClosedError
from .._base.in_flight import InFlight
from .._base.shutdown import ShutsDownOnExit
from .._calls.submit import submit

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Awaitable, Callable

    from .._calls.body import CallBody
    from .._pool.contract import Work

__all__ = ["ExecutorFront", "picklable"]

P = ParamSpec("P")
R = TypeVar("R")


class ExecutorFront(ShutsDownOnExit):
    """Runs calls on an executor; each call is awaited as one of offload's own.

    Examples:
        ```python
        with ProcessPoolExecutor() as executor:
            total = await offload.via(executor)(sum, range(10))
        ```

    ``run()`` (or calling the front) submits the call at once and returns an awaitable
    for its outcome. If the awaiter is cancelled, the executor's future is cancelled: a
    call still queued never runs; a running one finishes, and its outcome is dropped
    (an exception from it is logged on the ``offload`` logger). Outcomes that complete
    together reach the loop in one wake-up. Works under asyncio, uvloop and trio.

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread.

    Args:
        executor: The executor that runs the calls. It stays the caller's:
            ``shutdown()`` leaves it open.
    """

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._setup(executor)

    def _setup(self, executor: Any, *, owned: bool = False) -> None:
        """``owned``: the front made the executor (ProcessPool, InterpreterPool), and shuts
        it down with itself."""
        self._executor = executor
        self._owns_executor = owned
        self._in_flight: InFlight[Work, Any] = InFlight()  # the executor's future of each call

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Runs ``fn(*args, **kwargs)`` on the executor; await the result.

        Calling the front itself, ``front(fn, *args)``, is the same.

        Args:
            fn: The function; for processes and clusters, one that can be pickled.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            An awaitable that gives what ``fn`` returns, or raises what it raises.

        Raises:
            RuntimeError: No event loop is running in this thread.
            TypeError: ``fn`` is not callable, or is a coroutine function.
            PoolClosedError: The front has been shut down.
            Exception: What the executor's ``submit()`` raises (its own shutdown, say).
        """
        return submit(self, fn, args, kwargs)

    __call__ = run

    @property
    def closed(self) -> bool:
        """Whether ``shutdown()`` has been called."""
        return self._in_flight.closed

    def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None:
        """Stops the front: later calls raise PoolClosedError; submitted calls still run.

        Args:
            wait: Whether to block until every call submitted through this front has
                finished.
            cancel_queued: Whether to cancel the calls that have not started; their
                awaiters get ``asyncio.CancelledError``.
        """
        futures = self._in_flight.close()
        for future in futures if cancel_queued else ():
            self._cancel_future(future)
        if wait:
            self._in_flight.wait_until_none_left()
        if self._owns_executor:
            self._executor.shutdown(wait=wait)

    def _calls_in_flight(self) -> int:
        return len(self._in_flight)

    def __repr__(self) -> str:
        state = "closed" if self._in_flight.closed else "open"
        return f"<offload.{type(self).__name__} {state} calls={len(self._in_flight)} on {self._executor!r}>"

    # --- how a call reaches the executor, and comes back: what a subclass may change ---

    def _send(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Submits the call to the executor; returns the executor's future."""
        return self._executor.submit(fn, *args, **kwargs)

    def _watch(self, future: Any, settle: Callable[[Any, BaseException | None], None]) -> None:
        """Calls ``settle(value, error)`` with the outcome once ``future`` is done, from
        any thread: by default from the future's done-callback, on the executor's thread."""
        future.add_done_callback(lambda done: settle(*_outcome(done)))

    def _explain(self, error: BaseException, fn: Callable[..., Any]) -> BaseException:
        """The error the awaiter gets for ``error``: an executor's error made clear."""
        return error

    def _cancel_future(self, future: Any) -> bool:
        return bool(future.cancel())

    # --- Submitter (see _calls/body.py) ---

    def _submit(self, work: Work) -> None:
        call = cast("CallBody", work)  # submit() hands every Submitter a CallBody
        self._check_open()  # without the lock: a call racing shutdown() may go either way
        future = self._send(call._fn, call._args, call._kwargs)
        self._in_flight.add(work, future)
        # Watched only once the future is recorded, so that _done() always finds it.
        self._watch(future, functools.partial(self._settle, call))

    def _check_open(self) -> None:
        if self._in_flight.closed:
            raise PoolClosedError(f"{self!r} is shut down; submit calls to another front")

    def _settle(self, call: CallBody, value: Any, error: BaseException | None) -> None:
        # The error is explained before finish(), which lets go of the call's function.
        call.finish(value, None if error is None else self._explain(error, call._fn))

    def _cancel(self, work: Work) -> bool:
        with self._in_flight.lock:
            work.cancel_requested = True  # under the holder's lock: see Work
            future = self._in_flight.get(work)
        # Outside the lock: a cancelled future may run its done-callback at once, on this
        # thread, and the call's delivery takes the lock (_done).
        return future is not None and self._cancel_future(future)

    def _done(self, work: Work) -> None:
        self._in_flight.finished(work)


def picklable(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be pickled: for the fronts that send calls out of this
    interpreter, to tell a function that cannot be sent from one that failed."""
    import pickle

    try:
        pickle.dumps(fn)
    except Exception:
        return False
    return True


def _outcome(future: concurrent.futures.Future[Any]) -> tuple[Any, BaseException | None]:
    """The value or exception of a done future; never raises, or the awaiter would wait
    for ever."""
    try:
        if future.cancelled():
            return None, asyncio.CancelledError("the executor cancelled the call")
        # exception() rather than result(): re-raising would add this thread's frames
        # to the traceback the awaiter sees.
        error = future.exception()
        return (future.result(), None) if error is None else (None, error)
    except BaseException as exc:
        return None, exc
