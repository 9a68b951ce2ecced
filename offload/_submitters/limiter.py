"""``offload.Limiter``: a bound on how many calls of one kind run at once.

A database driver that allows 10 connections should not have 50 threads blocked on it.
A Limiter sits in front of a pool: it passes at most ``total`` of its calls to the pool
at a time and holds the rest, in FIFO order, without a thread. A held call that is
cancelled never runs; a call that finishes passes its place to the oldest held one,
from the pool thread, without a trip through the event loop. It works the same under
asyncio, uvloop and trio, since it never touches the loop. A held call counts as
submitted to the pool: it runs even if the pool shuts down meanwhile, and the pool's
``shutdown(wait=True)`` and interpreter exit wait for it (the pool's point 7).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from .._base.checks import count
from .._base.fork import start_fresh
from .._base.lock import take
from .._calls.submit import submit
from .._pool.pool import Pool
from .default import default_pool

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._pool.contract import Work

__all__ = ["Limiter"]

P = ParamSpec("P")
R = TypeVar("R")


class Limiter:
    """Runs at most ``total`` of its calls at once on a pool; holds the others.

    Examples:
        ```python
        db = offload.Limiter(10)
        rows = await db.run(cursor.execute, "select * from t")
        ```

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread. After ``os.fork()`` the child's limiter has no call
    running or held: those were the parent's.

    Args:
        total: The most calls of this limiter running at once; a positive int.
        pool: The pool its calls run on; by default, the default pool as it is now.

    Raises:
        TypeError: ``total`` is not an int, or ``pool`` not a Pool.
        ValueError: ``total`` is not positive.
    """

    def __init__(self, total: int, *, pool: Pool | None = None) -> None:
        if pool is not None and not isinstance(pool, Pool):
            raise TypeError(f"Limiter pool must be an offload.Pool, not {type(pool).__name__}")
        self._total: int = count(total, "Limiter total")
        self._pool = pool if pool is not None else default_pool()
        start_fresh(self)
        # A call held here was submitted: the pool runs it even if it is shut down
        # meanwhile, and waits for it (see Holder).
        self._pool._add_holder(self)

    def _reset_after_fork(self) -> None:
        """Makes the lock and an empty limiter; also run in the child after a fork."""
        self._lock = threading.Lock()
        # Guarded by _lock:
        self._running = 0  # calls passed to the pool and not done
        self._order: deque[Work] = deque()  # held calls, oldest first; cancelled ones skipped
        self._held: set[Work] = set()
        self._passing: set[Work] = set()  # taken from _held, not yet in the pool

    @property
    def total(self) -> int:
        """The most calls of this limiter running at once."""
        return self._total

    @property
    def pool(self) -> Pool:
        """The pool its calls run on."""
        return self._pool

    @property
    def running(self) -> int:
        """Calls passed to the pool and not done yet."""
        return self._running

    @property
    def waiting(self) -> int:
        """Calls held back, waiting for a place."""
        return len(self._held)

    def __repr__(self) -> str:
        return f"<offload.Limiter total={self._total} running={self._running} waiting={self.waiting}>"

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """As ``offload()``, with at most ``total`` of this limiter's calls running at once.

        A call beyond the bound is held, without a thread, until one of the limiter's
        calls finishes; held calls pass on in the order they came.

        Args:
            fn: The blocking function: a plain callable, not a coroutine function.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            An awaitable that gives what ``fn`` returns, or raises what it raises.

        Raises:
            RuntimeError: No event loop is running in this thread.
            TypeError: ``fn`` is not callable, or is a coroutine function.
            PoolClosedError: The pool has been shut down.
        """
        return submit(self, fn, args, kwargs)

    def _submit(self, work: Work) -> None:
        take(self._lock)  # the loop's thread, most often: see _base/lock.py
        try:
            full = self._running >= self._total
            if full and not self._pool.closed:
                self._order.append(work)
                self._held.add(work)
                return
            if not full:
                self._running += 1
        finally:
            self._lock.release()
        if full:  # a call held now would be passed to a pool that refuses new calls
            raise self._pool._closed_error()
        try:
            self._pool._submit(work)
        except BaseException:
            self._release()
            raise

    def _cancel(self, work: Work) -> bool:
        with self._lock:
            held = work in self._held
            if held:
                self._held.discard(work)
                work.cancel_requested = True  # under the holder's lock: see Work
                if not self._held:
                    self._order.clear()
        if held:
            work.forget()  # as Pool._cancel does, for a call skipped in _order later
            return True
        if self._pool._cancel(work):  # it was queued in the pool, holding a place
            self._release()
            return True
        return False

    def _done(self, work: Work) -> None:
        self._release()

    def _release(self) -> None:
        """Passes a finished call's place to the oldest held call, or frees it."""
        with self._lock:
            work = self._next_held_locked()
            if work is None:
                self._running -= 1
                return
            self._passing.add(work)
        try:
            self._pool._submit(work, admitted=True)
        finally:
            with self._lock:
                self._passing.discard(work)

    def held_calls(self) -> list[Work]:
        """The calls held, and those being passed to the pool (see Holder)."""
        with self._lock:
            return [*self._held, *self._passing]

    def _next_held_locked(self) -> Work | None:
        while self._held:
            work = self._order.popleft()
            if work in self._held:
                self._held.discard(work)
                return work
        return None
