"""``offload.Executor``: the pool behind the ``concurrent.futures.Executor`` interface.

asyncio's ``loop.set_default_executor()`` accepts only ``ThreadPoolExecutor`` instances
(Python 3.11+), so ``Executor`` subclasses it, but uses none of its machinery: it does
not call ``ThreadPoolExecutor.__init__``, which would set up a fixed set of threads and
a work queue, and overrides every method that would use them. Work goes to an
``offload.Pool``, so the pool's invariant (at most one waiting thread) holds for it.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import threading
from concurrent.futures.thread import BrokenThreadPool
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .._base.checks import count
from .._base.fork import start_fresh
from .._base.in_flight import InFlight
from .._base.log import logger
from .._calls.body import CallBody, check_callable, inner_function
from .._calls.delivery import asyncio_inbox_for
from .._pool.pool import DEFAULT_MAX_THREADS, Pool
from .._pool.worker import current_work
from .._submitters.limiter import Limiter

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .._calls.body import Submitter
    from .._calls.delivery import AsyncioInbox

__all__ = ["Executor", "InFlightCall", "checked_limits"]

P = ParamSpec("P")
R = TypeVar("R")


_get_running_loop = asyncio._get_running_loop


class Executor(concurrent.futures.ThreadPoolExecutor):
    """A ``concurrent.futures`` executor that runs its calls on an offload pool.

    It takes ``ThreadPoolExecutor``'s arguments with the same meaning, so code that
    builds one can build this instead, and ``loop.set_default_executor()`` accepts it.
    ``submit``, ``map`` and ``shutdown`` behave as the standard library documents, and
    fail as ``ThreadPoolExecutor``'s do, with its exception types and messages. By
    decision it is stricter in three places: ``max_workers`` must be an int and
    ``thread_name_prefix`` a str (``ThreadPoolExecutor`` also takes a float, a bool or
    any object), and ``submit()`` refuses a function that is not callable or is a
    coroutine function with TypeError at once, where ``ThreadPoolExecutor``'s future
    fails or returns a coroutine that never runs.

    Examples:
        ```python
        with offload.Executor(max_workers=8) as executor:
            sizes = list(executor.map(os.path.getsize, paths))
        ```

    Context: each call runs in the context this executor has in its thread, as
    ``ThreadPoolExecutor``'s run in their worker thread's own. It is made for the
    thread's first call from this executor, and the initializer runs in it, so the calls
    see what the initializer and the thread's earlier calls set through ``contextvars``
    (the ``decimal`` context too). ``submit()`` does not copy the caller's context, as
    ``ThreadPoolExecutor``'s does not: ``asyncio.to_thread`` copies it into the function
    it submits, so its calls see their caller's variables, and ``run_in_executor()``
    calls do not. The pool's other calls (``offload()``'s, other executors') never see
    this executor's context.

    Thread safety: every method may be called from any thread. After ``os.fork()`` the
    child's executor has no call in flight (those were the parent's), so its
    ``shutdown(wait=True)`` returns once the child's own calls are done.

    Args:
        max_workers: The most calls running at once (``DEFAULT_MAX_THREADS`` if None):
            threads start on demand up to it, and all but one leave once idle.
        thread_name_prefix: Prefix of the thread names (the pool's name).
        initializer: Called with ``initargs`` in each thread before its first call from
            this executor, in the context its calls there run in. If it raises, the
            executor is broken: pending and later calls fail with ``BrokenThreadPool``.
        initargs: The initializer's arguments.
        pool: Run on this existing pool (for instance the default one) instead of a new
            one; then ``shutdown()`` waits for this executor's calls only and leaves the
            pool open. Not to be combined with ``max_workers`` or ``thread_name_prefix``.
        limits: Bounds per kind of call: a function, and the most calls of it running at
            once, an int (a Limiter of this executor's own) or a ``Limiter`` on the same
            pool (shared with whoever else holds it). A call of the function wrapped in
            ``functools.partial``, at any depth, counts too: ``asyncio.to_thread``
            submits ``partial(Context.run, fn, ...)``, Starlette ``partial(fn, ...)``.
            (A partial given as a key bounds the calls of that very object.) Calls of
            other functions are not bounded but by the pool. See ``offload.install()``,
            which bounds DNS lookups.

    Raises:
        ValueError: ``max_workers`` is not positive ("max_workers must be greater than
            0", as ``ThreadPoolExecutor`` says), a limit is not positive, or a Limiter
            runs on another pool.
        TypeError: ``max_workers`` is not an int, ``thread_name_prefix`` is not a str,
            ``initializer`` is not callable, ``pool`` is not a Pool, ``pool`` comes with
            pool arguments, or ``limits`` is not a mapping of callables to ints or
            Limiters.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        pool: Pool | None = None,
        limits: Mapping[Callable[..., object], int | Limiter] | None = None,
    ) -> None:
        if isinstance(max_workers, int | float) and max_workers <= 0:
            # ThreadPoolExecutor's words, which CPython's own tests of it expect.
            raise ValueError("max_workers must be greater than 0")
        count(max_workers, "max_workers", none=True)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if pool is not None and not isinstance(pool, Pool):
            raise TypeError(f"pool must be an offload.Pool, not {type(pool).__name__}")
        if pool is not None and (max_workers is not None or thread_name_prefix):
            raise TypeError("pass either pool= or max_workers/thread_name_prefix to make one, not both")
        self._owns_pool = pool is None
        self._pool = pool or Pool(
            max_threads=max_workers or DEFAULT_MAX_THREADS, name=thread_name_prefix or "offload-executor"
        )
        self._max_workers = self._pool.max_threads  # read by code written for ThreadPoolExecutor
        self._limiters = _limiters_for(limits, self._pool)
        self._thread_initializer = initializer
        self._thread_initargs = initargs
        self._in_thread = threading.local()  # .context: this executor's, in each thread
        self._broken_reason: str | None = None  # guarded by the lock of _in_flight
        self._in_flight: InFlight[InFlightCall, InFlightCall] = InFlight()  # submitted, not finished
        start_fresh(self)

    def _reset_after_fork(self) -> None:
        # Also in the child after a fork, where the parent's calls never finish. A closed
        # executor stays closed.
        self._in_flight.forget_calls()

    @property
    def pool(self) -> Pool:
        """The pool this executor runs its calls on."""
        return self._pool

    def submit(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[R]:
        """Schedules ``fn(*args, **kwargs)`` and returns a Future for its outcome.

        Args:
            fn: The function to run on the pool.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            A ``concurrent.futures.Future`` for the call's result or exception.

        Raises:
            RuntimeError: The executor has been shut down.
            BrokenThreadPool: A thread initializer failed.
            TypeError: ``fn`` is not callable, or is a coroutine function (or the
                function inside it is, if it is a ``functools.partial``).
        """
        submitter, inner = self._submitter_for(fn)
        call = ExecutorCall(self, submitter, fn, args, kwargs)
        self._start(call, inner)
        return call

    def _submitter_for(self, fn: Callable[..., object]) -> tuple[Submitter, object]:
        """What ``fn``'s calls are submitted to (the Limiter that bounds it, or the pool),
        and the function inside ``fn``.

        On the loop's thread for every run_in_executor(). asyncio.to_thread submits every
        call as functools.partial(Context.run, fn), Starlette as partial(fn): the
        function inside is what a limit names, and its code flags answer
        check_callable() at once, where the partial would send it through inspect.
        """
        inner = inner_function(fn) if type(fn) is partial else fn
        limiters, limiter = self._limiters, None
        if limiters:  # install() always has some: for the DNS bound
            try:
                limiter = limiters.get(fn)
                if limiter is None and inner is not fn:
                    limiter = limiters.get(inner)
            except TypeError:  # unhashable, so in no limit
                limiter = None
        return (self._pool if limiter is None else limiter), inner

    def _start(self, call: InFlightCall, inner: object) -> None:
        """Counts ``call`` in and submits it, unless the executor is broken or shut down,
        or ``inner``, the function it calls, cannot be offloaded."""
        self._in_flight.add(call, call, self._refusal)
        try:
            check_callable(inner)  # after the checks above, as ThreadPoolExecutor has them first
            call._submitter._submit(call)
        except BaseException:
            self._finished(call)
            raise

    def _refusal(self) -> BaseException | None:
        """Why a call is refused now, if it is: asked under the lock of ``_in_flight``."""
        if self._broken_reason is not None:
            return BrokenThreadPool(self._broken_reason)
        if self._in_flight.closed or concurrent.futures.thread._shutdown:  # the latter set at exit
            when = "" if self._in_flight.closed else "interpreter "  # ThreadPoolExecutor's flag and words
            return RuntimeError(f"cannot schedule new futures after {when}shutdown")
        return None

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops accepting calls; may be called more than once.

        Args:
            wait: Whether to block until every call submitted has finished.
            cancel_futures: Whether to cancel the calls that have not started.

        Raises:
            RuntimeError: ``wait=True`` from one of this executor's own calls, which
                would wait for itself.
        """
        work = current_work()
        if wait and isinstance(work, ExecutorCall) and work._executor is self:
            raise RuntimeError(
                "Executor.shutdown(wait=True) called from one of its own calls, which would "
                "wait for itself; call shutdown(wait=False) there instead"
            )
        pending = self._in_flight.close()
        for call in pending if cancel_futures else ():
            call.cancel_if_queued()
        if self._owns_pool:
            self._pool.shutdown(wait=wait)
        if wait:
            self._in_flight.wait_until_none_left()

    def _finished(self, call: InFlightCall) -> None:
        self._in_flight.finished(call)

    def _thread_context(self) -> contextvars.Context:
        """The context this executor's calls run in in the current thread.

        ThreadPoolExecutor's calls run in their worker thread's own context, where its
        initializer ran: what the initializer sets through contextvars (the decimal
        module's context among them) and what a call sets, the thread's later calls
        see. A pool thread also runs offload()'s calls and other executors': so each
        executor has a context of its own in each thread, made on its first call
        there, and its initializer runs in it then.
        """
        context: contextvars.Context | None = getattr(self._in_thread, "context", None)
        if context is None:
            context = self._in_thread.context = contextvars.Context()
            if self._thread_initializer is not None:
                try:
                    context.run(self._thread_initializer, *self._thread_initargs)
                except BaseException:
                    logger.critical("Exception in initializer:", exc_info=True)
                    self._break("A thread initializer failed, the thread pool is not usable anymore")
        return context

    def _break(self, reason: str) -> None:
        with self._in_flight.lock:
            self._broken_reason = reason
        for call in self._in_flight.values():
            call.fail_if_pending(BrokenThreadPool(reason))


class InFlightCall(CallBody):
    """A call an Executor has submitted and not seen finish: its ``concurrent.futures``
    Future (ExecutorCall), or the asyncio Future of a loop's run_in_executor()
    (loop_executor.py). Each has these, called from any thread."""

    if not TYPE_CHECKING:
        __slots__ = ()

    if TYPE_CHECKING:  # each subclass's own

        def cancel_if_queued(self) -> None:
            """Cancels the call if it has not started."""

        def fail_if_pending(self, error: BaseException) -> None:
            """Fails the call with ``error`` unless it has started; for a broken executor."""


class ExecutorCall(InFlightCall, concurrent.futures.Future[Any]):
    """One call submitted through an Executor: the Future it returns, and the pool's Work."""

    __slots__ = (*CallBody.BODY_SLOTS, "_executor", "_ran")

    home: AsyncioInbox | None

    def __init__(
        self,
        executor: Executor,
        submitter: Submitter,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        self._executor = executor
        # The loop that submitted it, if any (loop.run_in_executor): its thread returns
        # there, and call_on_loop() calls into it.
        loop = _get_running_loop()
        self.home = None if loop is None else asyncio_inbox_for(loop)
        self._ran = False
        self.bind(submitter, fn, args, kwargs)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return None if self.home is None else self.home.loop

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        if self._submitter._cancel(self):  # taken out of the queue: it will never run
            self._executor._finished(self)
        return True

    def cancel_if_queued(self) -> None:
        self.cancel()  # a running call's Future refuses

    def fail_if_pending(self, error: BaseException) -> None:
        if self._submitter._cancel(self):
            self.set_exception(error)
            self._executor._finished(self)

    def run(self) -> None:
        if not self.set_running_or_notify_cancel():
            return  # cancelled between leaving the queue and now
        self._ran = True
        # Not the submitter's context, which bind() copied: see Executor._thread_context.
        self._context = self._executor._thread_context()
        # Why the executor is broken (an initializer failed, here or in another thread).
        # Read without its lock: it is set once, from None, and a call that reads None
        # as it is set runs, as one that started just before would.
        broken = self._executor._broken_reason
        if broken is not None:
            self._error = BrokenThreadPool(broken)
        else:
            super().run()
        del self  # no cycle through the error's traceback: see CallBody.run

    def deliver(self) -> None:
        self._submitter._done(self)  # first, as CallBody.deliver says why
        if self._ran:
            if self._error is None:
                self.set_result(self._value)
            else:
                self.set_exception(self._error)
        self._executor._finished(self)
        if self.returning is not None:
            # The outcome went through the Future (and, for run_in_executor(), a chained
            # asyncio Future); the inbox closes the returning thread's window after it.
            self.home.put(self)  # type: ignore[union-attr]  # returning: it has a home

    def settle(self) -> None:
        pass  # delivered by deliver(); in the inbox only for its window

    def fail(self, error: BaseException) -> None:
        self._submitter._done(self)
        if isinstance(error, asyncio.CancelledError):  # dropped by a pool shutdown
            super().cancel()
        elif self.set_running_or_notify_cancel():
            self.set_exception(error)
        self._executor._finished(self)


def checked_limits(
    limits: Mapping[Callable[..., object], int | Limiter] | None,
) -> Mapping[Callable[..., object], int | Limiter]:
    """``limits`` if it is a mapping (the values are checked by Executor), {} for None."""
    if limits is None:
        return {}
    if not isinstance(limits, collections.abc.Mapping):
        raise TypeError(f"limits must map functions to ints or Limiters, not {type(limits).__name__}")
    return limits


def _limiters_for(
    limits: Mapping[Callable[..., object], int | Limiter] | None, pool: Pool
) -> dict[object, Limiter]:
    """The Limiter of each function with a limit: ``limits``, checked."""
    limiters: dict[object, Limiter] = {}
    for fn, limit in checked_limits(limits).items():
        if not callable(fn):
            raise TypeError(f"limits keys must be the functions to bound, not {type(fn).__name__} {fn!r}")
        if isinstance(limit, Limiter):
            if limit.pool is not pool:
                raise ValueError(
                    f"the Limiter for {fn!r} runs on {limit.pool!r}, not on this executor's {pool!r}"
                )
            limiters[fn] = limit
        else:
            limiters[fn] = Limiter(count(limit, f"the limit for {fn!r} (or a Limiter)"), pool=pool)
    return limiters
