"""``offload.ProcessPool``: CPU-bound Python code on worker processes, awaited as offload's.

Threads do not make pure-Python code faster on a build with the GIL; processes do. A
ProcessPool is a front (see _fronts/front.py) on a ``ProcessPoolExecutor`` that it owns, with
the two errors users meet made clear:

- A function that cannot be pickled (a lambda, a local function) cannot be sent to a
  worker. The executor reports it late and obscurely (``Can't pickle local object``,
  from its feeder thread, into the call's future); the awaiter gets a TypeError that
  names the function and says what to do.
- A worker process that dies breaks the executor for good (``BrokenProcessPool``, for
  every call in it and every later one). The calls it held get ``WorkerLostError``, and
  the next call starts a new executor, so one crash does not end the pool.
"""

from __future__ import annotations

import functools
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING, Any

from .._base.checks import count
from .._base.errors import WorkerLostError, chained
from .._calls.body import describe
from .front import ExecutorFront, picklable

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.context import BaseContext

__all__ = ["ProcessPool"]


class ProcessPool(ExecutorFront):
    """Runs calls in worker processes; await them as ``offload()``'s.

    Examples:
        ```python
        async with offload.ProcessPool() as processes:
            primes = await processes.run(count_primes, 10_000_000)
        ```

    It takes ``ProcessPoolExecutor``'s arguments, with the same meaning, except that the
    default start method is "spawn" rather than the platform's. Functions, arguments and
    results travel pickled, so a function must be defined at module level. Worker
    processes start on demand, up to ``max_workers``; starting one costs the calling
    thread a few milliseconds.

    Cancelling an awaiter cancels its call in the executor, where it never runs if it is
    still queued. The executor sends calls to its workers ahead of time, though: up to
    ``max_workers + 1`` calls beyond the running ones are already on their way, and
    those run even if cancelled (their awaiters are released at once, as for a running
    call).

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread. Not usable in a child process after ``os.fork()``.

    Args:
        max_workers: The most worker processes; by default, as many as CPUs.
        mp_context: The multiprocessing context the workers start from; by default
            ``multiprocessing.get_context("spawn")``.
        initializer: Called with ``initargs`` in each worker process as it starts.
        initargs: The initializer's arguments.
        max_tasks_per_child: The calls a worker process runs before it is replaced by a
            fresh one; None for no limit.

    Raises:
        TypeError: ``max_workers`` is neither an int nor None.
        ValueError: ``max_workers`` is not positive.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
    ) -> None:
        count(max_workers, "max_workers", none=True)  # before the executor: it says less
        import multiprocessing  # here, not with offload: see process_executor.py

        from .process_executor import WatchfulProcessPoolExecutor

        # Not "fork", the default on Linux before Python 3.14: the process that runs an
        # event loop has threads (offload's pool, the executor's own), and a child forked
        # while one of them holds a lock (the import lock, a logging handler's) can hang
        # for ever; Python 3.12 warns about it. Not "forkserver" either: its first use
        # blocks the caller while it starts a server process, which then stays for the
        # life of the program. "spawn" costs the caller one process start per worker, and
        # behaves the same on Linux, macOS and Windows.
        self._new_executor = functools.partial(
            WatchfulProcessPoolExecutor,
            max_workers,
            mp_context or multiprocessing.get_context("spawn"),
            initializer,
            initargs,
            max_tasks_per_child=max_tasks_per_child,
        )
        self._setup(self._new_executor(), owned=True)

    def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None:
        """Stops the pool: later calls raise PoolClosedError; submitted calls still run.

        Args:
            wait: Whether to block until every call has finished and the worker
                processes have exited.
            cancel_queued: Whether to cancel the calls that have not started; their
                awaiters get ``asyncio.CancelledError``.
        """
        super().shutdown(wait, cancel_queued=cancel_queued)

    def _send(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Read without the lock (a reference is read whole, with or without the GIL): the
        # executor is only replaced under it, below, and a stale one is broken, so the
        # call then takes that same path.
        executor = self._executor
        try:
            return executor.submit(fn, *args, **kwargs)
        except BrokenExecutor:  # BrokenProcessPool, from a ProcessPoolExecutor
            pass
        # A worker died: the executor has failed the calls it held (see _explain) and
        # refuses new ones. Start a new one, unless another thread already has.
        with self._in_flight.lock:
            self._check_open()
            if self._executor is executor:
                self._executor = self._new_executor()
            executor = self._executor
        return executor.submit(fn, *args, **kwargs)

    def _explain(self, error: BaseException, fn: Callable[..., Any]) -> BaseException:
        if isinstance(error, BrokenExecutor):
            return chained(
                WorkerLostError(
                    f"a worker process died while {describe(fn)}() was in the pool, running or "
                    "queued: the call did not finish. Later calls run in new worker processes. "
                    "Most often, the program makes or runs its ProcessPool at module level, "
                    'without `if __name__ == "__main__":`. Each worker process starts by '
                    'importing the main module again (the "spawn" start method), so it runs '
                    "that code too, which fails there (its error is on stderr): put it under "
                    "the guard. Otherwise the process was killed, ran out of memory, called "
                    "os._exit() or failed in its initializer"
                ),
                error,
            )
        # A function that cannot be pickled never reached a worker, so whatever error
        # came back is the failure to send it (its type and wording vary by version).
        # Other functions' errors are theirs and reach the awaiter as they are.
        if not picklable(fn):
            return chained(
                TypeError(
                    f"{describe(fn)} cannot be sent to a worker process: define it at module level "
                    "(lambdas and local functions cannot be sent to another process)"
                ),
                error,
            )
        return error
