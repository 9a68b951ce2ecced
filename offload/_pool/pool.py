"""The elastic thread pool behind ``offload()``.

The design follows a 2006 note on the Lua interpreter: the interpreter (here, the event
loop) stays single-threaded; a blocking call is handed to another thread, and a new
thread is started only if none is already waiting. A thread whose blocking call returns
re-enters the interpreter and makes its coroutine's next call itself; the note counts
only new scheduler threads as waiting, never threads on their way back in.

THE STATES. A pool thread is, at every moment, in exactly one of:

- *busy*: running a call;
- *returning*: it has delivered a call's outcome to the event loop the call came from,
  and the loop has not yet run the awaiter's continuation (the callbacks the delivery
  scheduled, and a few turns more: never a timed wait);
- *idle*: parked until it is handed a call, or until it retires;
- *starting*: asked for, not yet at its first call.

THE INVARIANT. Idle and starting threads are *waiting* for work, and a pool never has
more than one waiting thread: ``idle + starting <= 1``. A returning thread is not
waiting for work: it is on its way back into its loop, the way the note's thread waits
in ``luaT_vm_lock``, and its own awaiter's next call is what it is there for.

What follows from it, and how the code keeps it:

1. A submitted call goes, in this order of preference, to a thread returning to the
   loop it is submitted from (the one that returned first: awaiters resume in the order
   their outcomes were settled, so each tends to get its own thread back), to the idle
   thread, or to the queue. The submitter claims the thread under the lock and hands it
   the call, so a call is never handed to a thread that is about to leave. A queued call
   starts a thread only if none is waiting and the pool is below ``max_threads``; at
   the bound it takes a thread returning to another loop, which would have to wait for
   that loop otherwise. Calls queue first and the oldest is handed on, so they start in
   the order they came.
   But while a thread handed a call is still *on its way* to it (woken, not yet
   running), a call for which a parked (returning or idle) thread exists is queued
   instead; that thread, once awake, hands the oldest queued call on as a submitter
   would before it runs its own, and a thread that finishes its call takes the queued
   call first (point 3). So short calls from many tasks run on the threads already
   awake: one wake at a time, not one per call. A call still gets a thread without
   waiting for any other call to end: the chain of hand-offs reaches a parked thread
   for each queued call (there is one for each, or it would not have been queued so).
   This is half of Go's rule for blocking system calls (a call keeps its thread;
   another is woken only for work that would wait), and point 8 the other half.
2. A starting thread takes the oldest queued call and, if calls are still queued, starts
   the next thread before it runs its own (unless it watches: point 8). Growth is a
   chain, one thread starting at a time, and no thread waits for the one it starts to
   run (see ``_launch``, in worker.py): not the event loop's, which submits, nor a
   starting thread's own call.
3. A thread that finishes a call takes the oldest queued call. If none is queued, and
   the call came from an event loop, it becomes a thread returning to that loop (after
   a short call, while others' short calls keep threads busy, it watches: point 8); it is
   so counted *before* it delivers the outcome, so that the awaiter's next call,
   submitted as soon as the outcome arrives, finds it. A thread that finishes a call
   from a plain thread, or whose loop's window closes without claiming it, does what
   point 3 says next: it becomes the idle thread, unless a thread is already waiting or
   the pool is shut down; then it exits.
4. A returning thread's window closes once its loop has turned ``WINDOW_TURNS`` times
   after settling the outcome, or has nothing else to run (``Inbox``, in delivery.py);
   a thread that takes a queued call instead of returning hands its window to a thread
   parked at the same loop, if any (point 1's queued call was its to take). A loop that
   blocks holds its returning threads until it turns, or until ``idle_timeout`` passes;
   a loop that closes, a shutdown, a fork and interpreter exit release them. A loop
   whose windows keep closing as their thread leaves gets one back at a time.
5. The idle thread retires after ``idle_timeout`` without work, so a quiet process holds
   no pool threads.
6. Hence: while a thread is idle, no call is queued but for a thread on its way
   (point 1) or while it watches (point 8); while calls are queued, a thread exists to
   take them (or they fail with ThreadStartError, see _thread_failed_to_start), but at
   interpreter exit, where no thread starts and the exiting thread runs them (exit.py).
7. A shut-down pool takes no new call, but runs every call submitted before: those
   queued, and those a Holder (a Limiter) accepted before and passes on later
   (``_submit(work, admitted=True)``). ``shutdown(wait=True)`` waits for all of them.
8. A starting thread that arrives while the busy threads took queued calls as fast as
   one each since it was asked for becomes the idle thread, *watching* the queue rather
   than taking a call, and so may a thread that finished a short call (or, one waiting
   already, the idle thread, woken to watch); while it watches and a thread is busy,
   calls are queued for the busy threads, none woken. It takes the oldest over once the
   busy threads stop ending calls. Short calls stay on the threads already busy
   (watching.py).

Locking. ``Pool._lock`` guards every field set in ``Pool._reset_after_fork``, the set of
Holders, the fields of every ``_Worker`` but ``wake``, and the flags of every Work in
the pool (contract.py states who writes them when). ``_Worker.wake`` is the one other
lock: see _Worker (in worker.py). A Holder's lock may be taken with ``_lock`` held,
never the other way round (see Holder). No user code runs, and nothing waits, while
``_lock`` is held. The GIL is never relied upon: the pool is correct on free-threaded
builds. ``_submit``, on the loop's thread, takes ``_lock`` by ``take()``: no convoy.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from .._base.checks import count, seconds
from .._base.errors import PoolClosedError, pool_closed_error
from .._base.fork import Registry, start_fresh
from .._base.lock import take
from .._base.shutdown import ShutsDownOnExit
from .._calls.submit import submit
from .stats import PoolStats
from .threads import PoolThreads
from .worker import _worker_of_current_thread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .contract import Holder, Home, Work
    from .worker import _Worker

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_THREADS", "Pool", "every_pool"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_MAX_THREADS = 256
"""The most threads a ``Pool`` runs calls on at once unless told otherwise: 256.

Calls beyond it wait in the queue, without a thread. The calls offload is made for (file
and socket I/O, DNS, database drivers, C code that releases the GIL) spend their time
waiting, so the bound is set by memory (a blocked pool thread holds about 21 KiB, the
memory row of docs/performance.md) and by what the far side can take, not by the cores.
Tokio bounds its pool for blocking calls at 512 on the same reasoning; 256 keeps the
GIL's hand-offs between runnable threads fewer.
"""

DEFAULT_IDLE_TIMEOUT = 10.0
"""Seconds the last idle thread of a ``Pool`` waits for work before it exits: 10.

After it, a quiet process holds no pool threads; ``idle_timeout=math.inf`` keeps one.
"""


class Pool(PoolThreads, ShutsDownOnExit):
    """A pool of threads for blocking calls that never holds more than one waiting thread.

    It grows on demand up to ``max_threads`` threads running calls at once, queues calls
    beyond that in FIFO order, and shrinks back: a thread that finishes a call goes back
    to the event loop the call came from, to run that loop's next call, and exits if the
    loop has no call for it while another thread is already waiting; the last idle
    thread exits after ``idle_timeout`` seconds without work.

    Examples:
        ```python
        async with offload.Pool(max_threads=8, name="db") as pool:
            rows = await pool.run(cursor.execute, "select 1")
        ```

    ``async with`` ends in ``shutdown(wait=True)`` awaited without blocking the loop; a
    plain ``with`` does the same where no loop runs, and on a loop's thread only when
    no call is in flight (else it shuts down without waiting and raises RuntimeError).
    Either block ending on one of the pool's own threads (in a loop run by one of its
    calls) would wait for itself: it shuts down without waiting and raises RuntimeError.

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread. After ``os.fork()`` the child's pool is empty
    (no threads, nothing queued) and usable; calls that were in flight in the parent
    are not carried over.

    Args:
        max_threads: The most threads running calls at once; a positive int.
        idle_timeout: Seconds the last idle thread waits for work before it exits; a
            number >= 0, or ``math.inf`` to keep it.
        name: Prefix of the pool's thread names, which read ``"{name}-{n}"`` until the
            thread's first call, then ``"{name}-{n}:{qualified name of the function}"``
            of the call it runs (or, while idle, ran last).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        max_threads: int = DEFAULT_MAX_THREADS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        name: str = "offload",
    ) -> None:
        self._max_threads: int = count(max_threads, "max_threads")
        self._idle_timeout = seconds(idle_timeout, "idle_timeout")
        if not isinstance(name, str) or not name:
            raise TypeError(f"Pool name must be a non-empty str, not {name!r}")
        self._name = name
        self._closed = False
        self._holders: weakref.WeakSet[Holder] = weakref.WeakSet()
        start_fresh(self)
        every_pool.add(self)

    def _reset_after_fork(self) -> None:
        """Makes the lock and an empty pool; also run in the child after a fork."""
        self._lock = threading.Lock()
        self._all_threads_gone = threading.Condition(self._lock)
        # Guarded by _lock, with the fields of each _Worker and of each Work (see Work).
        self._queue: deque[Work] = deque()
        self._queued = 0  # Work in _queue not cancelled; cancelled ones are skipped lazily
        self._idle: _Worker | None = None
        self._starting = False
        self._homes: dict[Home, deque[_Worker]] = {}  # returning threads, in order; no empty deque
        self._returning = 0
        self._unused_returns: dict[Home, int] = {}  # see returning.py
        self._workers: set[_Worker] = set()  # every thread of the pool past its start
        self._threads = 0
        self._busy = 0
        self._peak_threads = 0
        self._spawned = 0
        self._completed = 0
        self._names_given = 0
        self._exiting = False  # set by interpreter exit, which starts no thread (exit.py)
        self._delivering = 0  # busy threads of a shut-down pool that deliver, then take a call
        self._on_its_way = 0  # parked threads handed a call, not yet running (point 1)
        self._reset_watch()  # the fields of point 8: see QueueWatch

    @property
    def name(self) -> str:
        """The prefix of this pool's thread names."""
        return self._name

    @property
    def max_threads(self) -> int:
        """The most threads running calls at once."""
        return self._max_threads

    @property
    def idle_timeout(self) -> float:
        """Seconds the last idle thread waits for work before it exits."""
        return self._idle_timeout

    @property
    def closed(self) -> bool:
        """Whether ``shutdown()`` has been called."""
        return self._closed

    def __repr__(self) -> str:
        s, state = self.stats(), "closed" if self._closed else "open"
        return (
            f"<offload.Pool {self._name!r} {state} max_threads={self._max_threads} "
            f"threads={s.threads} busy={s.busy} queued={s.queued}>"
        )

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Runs ``fn(*args, **kwargs)`` on a thread of this pool; await the result.

        The call is submitted at once (as ``loop.run_in_executor`` does) and the returned
        awaitable gives its result or raises its exception. See ``offload.offload``,
        which does the same on the default pool, for the full semantics.

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
            ThreadStartError: Raised by the awaitable: no thread could be started for
                the call, and none of the pool's was left to run it.
        """
        return submit(self, fn, args, kwargs)

    def _waits_for_this_thread(self) -> bool:
        worker = _worker_of_current_thread()
        return worker is not None and worker.pool is self

    def _calls_in_flight(self) -> int:
        with self._lock:
            return self._busy + self._queued + len(self._held_locked())

    def _add_holder(self, holder: Holder) -> None:
        """Counts in the calls ``holder`` will pass on (see point 7)."""
        with self._lock:
            self._holders.add(holder)

    def _held_locked(self) -> list[Work]:
        return [work for holder in self._holders for work in holder.held_calls()]

    def stats(self) -> PoolStats:
        """Returns a consistent snapshot of the pool's counters.

        Returns:
            The counters, read at one moment under the pool's lock.
        """
        with self._lock:
            return PoolStats(
                threads=self._threads,
                busy=self._busy,
                idle=int(self._idle is not None),
                starting=int(self._starting),
                queued=self._queued,
                peak_threads=self._peak_threads,
                spawned=self._spawned,
                completed=self._completed,
                returning=self._returning,
            )

    def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None:
        """Stops the pool: later calls raise PoolClosedError; submitted calls still run.

        The idle thread and the threads returning to their loops exit at once (or take
        queued calls); busy threads finish their call and the queued calls, then exit.
        Calling it again is harmless.

        Args:
            wait: Whether to block until every thread of the pool has left it, which is
                after every call submitted before the shutdown has finished.
            cancel_queued: Whether to drop the calls that have not started yet; their
                awaiters get ``asyncio.CancelledError`` (or, through ``Executor``,
                cancelled futures). Running calls are never interrupted.

        Raises:
            RuntimeError: ``wait=True`` from one of the pool's own threads, which would
                wait for itself.
        """
        if wait and self._waits_for_this_thread():
            raise RuntimeError(
                f"shutdown(wait=True) called from a thread of pool {self._name!r}, which "
                "would wait for itself; call shutdown(wait=False) there instead"
            )
        with self._lock:
            self._closed = True
            dropped = self._pop_all_locked() if cancel_queued else []
            waiting = [worker for returning in self._homes.values() for worker in returning]
            if self._idle is not None:
                waiting.append(self._idle)
                self._idle = None
                self._watching = False
            for worker in waiting:
                self._stop_returning_locked(worker)
                self._next_locked(worker)
            waiting = [worker for worker in waiting if not self._released_already_locked(worker)]
        for worker in waiting:
            worker.wake.release()
        for work in dropped:
            work.fail(asyncio.CancelledError(f"pool {self._name!r} was shut down before the call started"))
        if wait:
            with self._lock:
                self._all_threads_gone.wait_for(lambda: self._threads == 0 and not self._held_locked())

    # --- submitting side (the event loop's thread: never waits) ---

    def _submit(self, work: Work, *, admitted: bool = False) -> None:
        """Queues ``work`` and, unless a thread on its way will, hands the oldest queued
        call to a parked thread or starts one; see point 1. ``admitted``: a Holder
        accepted it before a shutdown, so it runs (point 7)."""
        take(self._lock)  # not a with: see _base/lock.py
        try:
            if self._closed:
                if not admitted:
                    raise self._closed_error()
                self._all_threads_gone.notify_all()  # a call more for exit to run
            # Cancelled on its way in (a Limiter passes a held call on from a pool thread as
            # the loop cancels it): never run nor queued; failing it frees its place.
            dropped = work.cancel_requested
            worker = name = None
            if not dropped:
                self._enqueue_locked(work)
                if self._closed:
                    # Threads not busy, or delivering, take queued calls (point 7): start one for the rest.
                    if self._queued > self._threads - self._busy + self._delivering:
                        name = self._reserve_thread_locked()
                elif not self._queued_for_threads_on_their_way_locked():
                    worker, name = self._serve_queue_locked(work.home)
        finally:
            self._lock.release()
        self._wake_or_start(worker, name)
        if dropped:
            work.fail(asyncio.CancelledError("the call was cancelled before it reached the pool"))

    def _closed_error(self) -> PoolClosedError:
        return pool_closed_error(self._name, exiting=self._exiting)

    def _done(self, work: Work) -> None:
        pass  # a pool keeps its own account of its calls; see Limiter for one that uses it

    def _cancel(self, work: Work) -> bool:
        """Marks ``work`` cancelled; returns True if it was queued and so will never run."""
        with self._lock:
            if work.cancel_requested or not work.queued:
                work.cancel_requested = True
                return False
            work.cancel_requested = True
            work.queued = False
            self._queued -= 1
            if self._queued == 0:
                self._queue.clear()  # only cancelled calls are left
        # It stays in the queue, skipped, until the calls before it are popped: its
        # arguments, which can be big, go now. Not under the lock: freeing them can run
        # their __del__.
        work.forget()
        return True


# Every pool alive, for interpreter exit (exit.py).
every_pool: Registry[Pool] = Registry()
