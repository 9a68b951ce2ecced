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
  scheduled: one or two turns of the loop, never a timed wait);
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
   that loop otherwise.
2. A starting thread takes the oldest queued call and, if calls are still queued, starts
   the next thread before it runs its own. Growth is a chain, one thread starting at a
   time, and the thread that submits (the event loop's) never waits for a thread to
   start: it hands ``Thread.start()`` to a raw helper thread.
3. A thread that finishes a call takes the oldest queued call. If none is queued, and
   the call came from an event loop, it becomes a thread returning to that loop; it is
   so counted *before* it delivers the outcome, so that the awaiter's next call,
   submitted as soon as the outcome arrives, finds it. A thread that finishes a call
   from a plain thread, or whose loop's window closes without claiming it, does what
   point 3 says next: it becomes the idle thread, unless a thread is already waiting or
   the pool is shut down; then it exits.
4. The window of a returning thread closes once its loop has turned twice after
   settling the outcome (see ``Inbox``, in _delivery.py). A loop that blocks holds its
   returning threads until it turns, or until ``idle_timeout`` passes; a loop that
   closes, a shutdown, a fork and interpreter exit release them.
5. The idle thread retires after ``idle_timeout`` without work, so a quiet process holds
   no pool threads.
6. Hence: while a thread is idle, no call is queued; while calls are queued, a thread
   exists to take them (or they fail with ThreadStartError, see _thread_failed_to_start).

Locking. ``Pool._lock`` guards every field set in ``Pool._reset_after_fork``, the fields of
every ``_Worker`` but ``wake``, and the ``queued``/``cancel_requested``/``returning``
fields of every Work in the pool. ``_Worker.wake`` is the one other lock: see _Worker.
No user code runs, and nothing waits, while ``_lock`` is held. The GIL is never relied
upon: this module is correct on free-threaded builds.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from ._call import chained, submit
from ._exceptions import PoolClosedError, ThreadStartError
from ._fork import Registry, reset_after_fork
from ._shutdown import ShutsDownOnExit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_THREADS",
    "Home",
    "Pool",
    "PoolStats",
    "Submitter",
    "Work",
    "current_work",
]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("offload")

#: Threads a pool may run at once unless told otherwise. The calls offload is made for
#: (file and socket I/O, DNS, database drivers, C code that releases the GIL) spend their
#: time waiting, not computing, so the bound is set by memory and by what the far side
#: can take, not by the number of cores. A pool thread blocked in a call holds about
#: 21 KiB of resident memory (Linux, CPython 3.11 to 3.13), so 256 threads cost about
#: 5 MiB; 100,000 calls submitted at once still make only 256 threads, and the rest wait
#: in the queue. Tokio bounds its pool for blocking calls at 512 on the same reasoning;
#: 256 keeps the GIL's hand-offs between runnable threads fewer.
DEFAULT_MAX_THREADS = 256

#: Seconds the last idle thread waits for work before it exits.
DEFAULT_IDLE_TIMEOUT = 10.0

#: Seconds between a returning thread's looks at whether its loop has closed. A loop
#: closed between settling an outcome and turning twice drops the callbacks that would
#: close the window (asyncio's ``close()`` clears its ready queue), so the thread looks
#: for itself; a window normally closes within microseconds, before the first look.
LOOP_CHECK_INTERVAL = 0.25

#: Seconds interpreter exit waits for running calls before it says, on the ``offload``
#: logger, which calls it waits for (it goes on waiting).
EXIT_PATIENCE = 5.0

# The clock of the idle timeout (the tests move one of their own).
_monotonic = time.monotonic


class Submitter(Protocol):
    """What a call is submitted to: a Pool, or a Limiter in front of one."""

    def _submit(self, work: Work) -> None:
        """Takes ``work`` in; any thread; never waits."""

    def _cancel(self, work: Work) -> bool:
        """Marks ``work`` cancelled; True if it had not started and never will."""

    def _done(self, work: Work) -> None:
        """Told, in the pool thread, that ``work`` is done, just before its delivery."""


class Home(Protocol):
    """The event loop a call was submitted from, as the pool sees it (its inbox)."""

    def is_closed(self) -> bool:
        """Whether the loop has closed; any thread."""


class Work(Protocol):
    """A call as the pool sees it: something to run on a pool thread, then deliver.

    ``queued``, ``cancel_requested`` and ``returning`` belong to the pool (written under
    its lock), and the front end makes the call with the first two False and the third
    None: a cancel can reach the pool before the call does (see ``_submit``). ``home``
    is the loop the call came from, or None for a call from a plain thread. The rest is
    the front end's, which knows how the call's awaiter is woken.
    """

    queued: bool
    cancel_requested: bool
    returning: Returning | None
    """The thread that ran the call, if it is returning to ``home``: ``deliver()`` must
    have the loop call ``returning.window_closed(self)`` once it has run the awaiter's
    continuation (the inbox does, see _delivery.py)."""

    @property
    def home(self) -> Home | None: ...

    def label(self) -> str:
        """A short name for the call (its function's qualified name), for thread names."""

    def run(self) -> None:
        """Runs the call on the current thread and keeps its outcome; never raises."""

    def deliver(self) -> None:
        """Sends the kept outcome to the awaiter; may run on any thread, never waits."""

    def fail(self, error: BaseException) -> None:
        """Delivers ``error`` as the outcome of a call that will never run."""

    def forget(self) -> None:
        """Drops the function and its arguments of a call cancelled before it started,
        which will never run nor be failed; it may wait in a queue a while yet."""


class Returning(Protocol):
    def returning_with(self, work: Any, /) -> bool:
        """Whether the thread still returns with ``work``'s outcome; no lock needed."""

    def window_closed(self, work: Any, /) -> None:
        """On ``work.home``'s thread: the awaiter's continuation has run."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a pool, taken atomically under its lock.

    ``threads == busy + returning + idle + starting`` always holds, and the invariant is
    ``idle + starting <= 1``.
    """

    threads: int
    """Threads of the pool alive now."""
    busy: int
    """Threads running a call."""
    idle: int
    """Threads parked waiting for a call (0 or 1)."""
    starting: int
    """Threads asked for that have not reached their first call yet (0 or 1)."""
    queued: int
    """Calls submitted and not yet started, cancelled ones excluded."""
    peak_threads: int
    """The most threads alive at once since the pool was made."""
    spawned: int
    """Threads started since the pool was made."""
    completed: int
    """Calls that have finished running, whatever their outcome."""
    returning: int = 0
    """Threads that delivered an outcome to an event loop which has not yet run the
    awaiter's continuation; the loop's next calls go to them first."""


class _Worker:
    """One pool thread's handle, through which the pool hands it calls.

    ``wake`` is a lock used as a one-slot mailbox: it is held (locked) while the thread
    has no call handed to it, and released by whoever hands it one (or tells it to exit
    by handing it ``None``). The thread waits by acquiring it. Only the thread itself
    acquires it and only one claimer releases it per wait, so it never over-releases.

    ``home`` and ``returned`` are set while the thread is returning: the loop it returns
    to, and the call whose outcome it delivered there, which names its window (the
    thread may be claimed and return again, for another call, before the first window
    closes).
    """

    __slots__ = ("base_name", "home", "label", "pool", "returned", "wake", "work")

    def __init__(self, pool: Pool, base_name: str) -> None:
        self.pool = pool
        self.base_name = base_name
        self.wake = threading.Lock()
        self.wake.acquire()
        self.work: Work | None = None
        self.label = ""  # the name of its last call, for exit to say what it waits for
        self.home: Home | None = None
        self.returned: Work | None = None

    def returning_with(self, work: Work, /) -> bool:
        # Read without the lock: ``returned`` moves on from a call and never back to it.
        return self.returned is work

    def window_closed(self, work: Work, /) -> None:
        self.pool._window_closed(self, work)


_current = threading.local()


def current_work() -> Work | None:
    """The call the current thread is running for a pool, or None outside a pool call."""
    worker = _worker_of_current_thread()
    return None if worker is None else worker.work


class Pool(ShutsDownOnExit):
    """A pool of threads for blocking calls that never holds more than one waiting thread.

    It grows on demand up to ``max_threads`` threads running calls at once, queues calls
    beyond that in FIFO order, and shrinks back: a thread that finishes a call goes back
    to the event loop the call came from, to run that loop's next call, and exits if the
    loop has no call for it while another thread is already waiting; the last idle
    thread exits after ``idle_timeout`` seconds without work.

    Example::

        async with offload.Pool(max_threads=8, name="db") as pool:
            rows = await pool.run(cursor.execute, "select 1")

    ``async with`` ends in ``shutdown(wait=True)`` awaited without blocking the loop; a
    plain ``with`` does the same where no loop runs, and on a loop's thread only when
    no call is in flight (else it shuts down without waiting and raises RuntimeError).

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
        self._max_threads = _check_max_threads(max_threads)
        self._idle_timeout = _check_idle_timeout(idle_timeout)
        if not isinstance(name, str) or not name:
            raise TypeError(f"Pool name must be a non-empty str, not {name!r}")
        self._name = name
        self._closed = False
        self._reset_after_fork()
        reset_after_fork(self)
        _pools.add(self)

    def _reset_after_fork(self) -> None:
        """Makes the lock and an empty pool; also run in the child after a fork."""
        self._lock = threading.Lock()
        self._all_threads_gone = threading.Condition(self._lock)
        # Guarded by _lock, with the fields of each _Worker and of each Work (see Work).
        self._queue: deque[Work] = deque()
        self._queued = 0  # Work in _queue not cancelled; cancelled ones are skipped lazily
        self._idle: _Worker | None = None
        self._starting = False
        # Threads returning to each loop, in the order they returned; no empty deque.
        self._homes: dict[Home, deque[_Worker]] = {}
        self._returning = 0
        self._workers: set[_Worker] = set()  # every thread of the pool past its start
        self._threads = 0
        self._busy = 0
        self._peak_threads = 0
        self._spawned = 0
        self._completed = 0
        self._names_given = 0

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
        s = self.stats()
        state = "closed" if self._closed else "open"
        return (
            f"<offload.Pool {self._name!r} {state} max_threads={self._max_threads} "
            f"threads={s.threads} busy={s.busy} queued={s.queued}>"
        )

    def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        """Runs ``fn(*args, **kwargs)`` on a thread of this pool; await the result.

        The call is submitted at once (as ``loop.run_in_executor`` does) and the returned
        awaitable gives its result or raises its exception. See ``offload.offload``,
        which does the same on the default pool, for the full semantics.

        Raises:
            RuntimeError: No event loop is running in this thread.
            TypeError: ``fn`` is not callable, or is a coroutine function.
            PoolClosedError: The pool has been shut down.
        """
        return submit(self, fn, args, kwargs)

    def _in_flight(self) -> int:
        with self._lock:
            return self._busy + self._queued

    def stats(self) -> PoolStats:
        """Returns a consistent snapshot of the pool's counters."""
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
        worker = _worker_of_current_thread()
        if wait and worker is not None and worker.pool is self:
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
            for worker in waiting:
                self._stop_returning_locked(worker)
                self._next_locked(worker)
        for worker in waiting:
            worker.wake.release()
        for work in dropped:
            work.fail(asyncio.CancelledError(f"pool {self._name!r} was shut down before the call started"))
        if wait:
            with self._lock:
                self._all_threads_gone.wait_for(lambda: self._threads == 0)

    # --- submitting side (the event loop's thread: never waits) ---

    def _submit(self, work: Work) -> None:
        """Hands ``work`` to a returning or the idle thread, or queues it; see point 1."""
        with self._lock:
            if self._closed:
                raise PoolClosedError(
                    f"pool {self._name!r} is shut down; submit calls to another Pool, "
                    "or call offload.set_default_pool() with a new one"
                )
            # Cancelled on its way in: a Limiter hands a held call to the pool from a pool
            # thread while the loop may cancel it. It must never run, nor count as queued;
            # failing it tells its submitter, which frees the place the call held.
            dropped = work.cancel_requested
            worker = name = None
            if not dropped:
                worker = self._claim_locked(work)
                if worker is None:
                    name = self._reserve_thread_locked()
                    if name is None and self._homes and self._threads >= self._max_threads:
                        worker = self._steal_returning_locked()
        if worker is not None:
            worker.wake.release()
        elif name is not None:
            self._start_thread_detached(name)
        elif dropped:
            work.fail(asyncio.CancelledError("the call was cancelled before it reached the pool"))

    def _claim_locked(self, work: Work) -> _Worker | None:
        """Hands ``work`` to a thread returning to its loop or to the idle thread, which
        it returns; else queues it and returns None."""
        returning = self._homes.get(work.home) if work.home is not None else None
        if returning is not None:
            worker = returning.popleft()
            if not returning:
                del self._homes[work.home]  # type: ignore[arg-type]
            self._returning -= 1
            worker.home = worker.returned = None
            if self._queued:  # calls from other loops wait for a thread: the oldest first
                self._enqueue_locked(work)
                work = self._pop_locked()  # type: ignore[assignment]
        elif self._idle is not None:
            worker, self._idle = self._idle, None
        else:
            self._enqueue_locked(work)
            return None
        self._busy += 1
        work.queued = False
        worker.work = work
        return worker

    def _steal_returning_locked(self) -> _Worker:
        """Gives the oldest queued call to a thread returning to some loop (point 1)."""
        returning = next(iter(self._homes.values()))
        worker = returning[0]
        self._stop_returning_locked(worker)
        self._next_locked(worker)
        return worker

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

    # --- returning threads (point 4) ---

    def _window_closed(self, worker: _Worker, work: Work) -> None:
        """On the loop's thread: ``work``'s awaiter has resumed without claiming
        ``worker``, if it is still returning for ``work``; it does what point 3 says."""
        with self._lock:
            if worker.returned is not work:
                return  # claimed since, or released by shutdown
            self._stop_returning_locked(worker)
            woken = self._next_locked(worker) != "idle"
        if woken:
            worker.wake.release()

    def _stop_returning_locked(self, worker: _Worker) -> None:
        home = worker.home
        if home is None:
            return
        returning = self._homes[home]
        returning.remove(worker)
        if not returning:
            del self._homes[home]
        self._returning -= 1
        worker.home = worker.returned = None

    # --- starting threads ---

    def _reserve_thread_locked(self) -> str | None:
        """Counts in a starting thread if the invariant and the bound allow one; its name."""
        if self._starting or self._idle is not None or self._threads >= self._max_threads:
            return None
        self._starting = True
        self._threads += 1
        self._peak_threads = max(self._peak_threads, self._threads)
        self._names_given += 1
        return f"{self._name}-{self._names_given}"

    def _start_thread_detached(self, name: str) -> None:
        # Thread.start() blocks until the new thread runs, and the submitting thread is
        # the event loop's: a raw helper thread (which registers nothing with the
        # threading module) makes that call instead.
        try:
            _thread.start_new_thread(self._start_thread, (name,))
        except Exception as exc:
            self._thread_failed_to_start(exc)

    def _start_thread(self, name: str) -> None:
        worker = _Worker(self, name)
        thread = threading.Thread(target=self._serve, args=(worker,), name=name, daemon=True)
        try:
            thread.start()
        except Exception as exc:
            self._thread_failed_to_start(exc)

    def _thread_failed_to_start(self, error: Exception) -> None:
        """Undoes a reservation; fails the queued calls if no thread is left to run them."""
        with self._lock:
            self._starting = False
            self._leave_locked()
            stranded = self._pop_all_locked() if self._threads == 0 else []
        message = f"pool {self._name!r} could not start a thread: {error}"
        for work in stranded:  # an exception each: raising one changes its traceback
            work.fail(chained(ThreadStartError(message), error))

    # --- the pool thread ---

    def _serve(self, worker: _Worker) -> None:
        """The body of a pool thread: its first call, then calls until it exits."""
        _current.worker = worker
        thread = threading.current_thread()
        named_for = ""
        work = self._first_work(worker)
        while work is not None:
            label = worker.label = work.label()
            if label != named_for:  # renaming costs more than comparing
                thread.name = f"{worker.base_name}:{label}"
                named_for = label
            work.run()
            state = self._finish(worker, work)
            del work  # the thread may wait long: it holds nothing of the call meanwhile
            # Not renamed back while it waits: that would cost every sequential call two
            # renames on the path that delivers its result.
            work = self._after(worker, state)

    def _first_work(self, worker: _Worker) -> Work | None:
        with self._lock:
            self._starting = False
            self._spawned += 1
            self._workers.add(worker)
            state = self._next_locked(worker)
            next_name = self._reserve_thread_locked() if state == "busy" and self._queued else None
        if next_name is not None:
            self._start_thread(next_name)
        return self._after(worker, state)

    def _finish(self, worker: _Worker, done: Work) -> str:
        """Settles the thread's next state (point 3), delivers ``done``, and returns the
        state: see ``_after``."""
        with self._lock:
            self._busy -= 1
            self._completed += 1
            if self._closed:
                self._all_threads_gone.notify_all()  # a call less for exit to wait for
            home = done.home
            # A cancelled awaiter has resumed already: no continuation to wait for.
            if home is None or done.cancel_requested or self._queued or self._closed:
                state = self._next_locked(worker)
            else:
                state = "returning"
                worker.work = None
                worker.home, worker.returned = home, done
                done.returning = worker
                returning = self._homes.get(home)
                if returning is None:
                    returning = self._homes[home] = deque()
                returning.append(worker)
                self._returning += 1
        try:
            done.deliver()
        except BaseException as exc:
            # The thread's next state is settled: it may be the idle or a returning
            # thread, to which the next call is handed. Were it to die here, that call
            # would never run (the hand-over to a stopping thread of anyio#323). Report
            # the failure as an uncaught exception in a thread is reported, and serve on.
            thread = threading.current_thread()
            threading.excepthook(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, thread)))
        return state

    def _after(self, worker: _Worker, state: str) -> Work | None:
        """The thread's next call in ``state``, waiting for one if it is not busy."""
        if state == "busy":
            return worker.work
        if state == "gone":
            return None
        return self._wait(worker)

    def _wait(self, worker: _Worker) -> Work | None:
        """Parks an idle or returning thread; returns its next call, or None to exit.

        It waits at most ``idle_timeout`` in all, returning then idle (point 5); while it
        is returning, it looks at its loop every ``LOOP_CHECK_INTERVAL`` (point 4).
        """
        deadline = _monotonic() + self._idle_timeout
        while True:
            timeout = deadline - _monotonic()
            if worker.home is not None:
                timeout = min(timeout, LOOP_CHECK_INTERVAL)
            if worker.wake.acquire(timeout=-1 if math.isinf(timeout) else max(timeout, 0)):
                return worker.work
            with self._lock:
                state = self._on_wait_timeout_locked(worker, expired=_monotonic() >= deadline)
            if state == "busy" or state == "gone":
                return worker.work
            if state == "claimed":
                # Claimed between the timeout and taking the lock: the claimer has handed
                # over a call (or None, to exit) and releases wake just after the lock.
                worker.wake.acquire()
                return worker.work

    def _on_wait_timeout_locked(self, worker: _Worker, expired: bool) -> str:
        """Decides what a parked thread whose wait timed out does; its next state."""
        if worker.home is not None:
            if expired:
                self._stop_returning_locked(worker)
                self._leave_locked(worker)
                return "gone"
            if worker.home.is_closed():
                self._stop_returning_locked(worker)
                return self._next_locked(worker)
            return "returning"
        if self._idle is worker:
            if not expired:
                return "idle"
            self._idle = None
            self._leave_locked(worker)
            return "gone"
        return "claimed"

    # --- bookkeeping, all with _lock held ---

    def _next_locked(self, worker: _Worker) -> str:
        """What a thread without a call does next (point 3): takes the oldest queued call
        ("busy"), becomes the idle thread ("idle"), or leaves the pool ("gone")."""
        work = self._pop_locked()
        worker.work = work
        if work is not None:
            self._busy += 1
            return "busy"
        if self._closed or self._starting or self._idle is not None:
            self._leave_locked(worker)
            return "gone"
        self._idle = worker
        return "idle"

    def _enqueue_locked(self, work: Work) -> None:
        work.queued = True
        self._queue.append(work)
        self._queued += 1

    def _pop_locked(self) -> Work | None:
        while self._queued:
            work = self._queue.popleft()
            if not work.cancel_requested:
                self._queued -= 1
                work.queued = False
                return work
        return None

    def _pop_all_locked(self) -> list[Work]:
        stranded = []
        while (work := self._pop_locked()) is not None:
            stranded.append(work)
        return stranded

    def _leave_locked(self, worker: _Worker | None = None) -> None:
        self._threads -= 1
        self._workers.discard(worker)  # None: a thread that never started
        if self._threads == 0:
            self._all_threads_gone.notify_all()

    def _awaited_locked(self) -> tuple[list[str], list[Work]]:
        """The calls not cancelled: the names of those running, and those queued (named
        outside the lock, since naming reads the function's attributes)."""
        running = [w.label for w in self._workers if w.work is not None and not w.work.cancel_requested]
        return running, [work for work in self._queue if not work.cancel_requested]

    def _abandon_calls(self) -> None:
        """Treats the running calls as if their awaiters had been cancelled: inside them
        ``offload.cancelled()`` turns True, their outcomes are dropped, and exit does
        not wait for them. For a test's pool that a test left calls running in."""
        with self._lock:
            for worker in self._workers:
                if worker.work is not None:
                    worker.work.cancel_requested = True

    def _run_queued_here(self) -> None:
        """At exit, once shut down: runs the queued calls on this thread. Python 3.12
        refuses to start a thread once the interpreter is shutting down, so a call queued
        for a thread still to be started would fail with ThreadStartError, unseen, and
        never run. A thread of the pool that does start pops calls under the same lock:
        each runs once either way."""
        while True:
            with self._lock:
                work = self._pop_locked()
                if work is None:
                    return
                self._completed += 1
            work.run()
            work.deliver()

    def _wait_for_awaited_calls(self, patience: float) -> None:
        """At exit, once shut down: waits until no call is left but cancelled ones; after
        ``patience`` seconds without one finishing, says which on the ``offload`` logger."""
        told = False
        while True:
            with self._lock:
                running, queued = self._awaited_locked()
                if not running and not queued:
                    return
                quiet = not self._all_threads_gone.wait(timeout=None if told else patience)
            if quiet and not told:
                told = True
                names = running + [_queued_label(work) for work in queued]
                logger.warning(
                    "offload: exit waits for %d call(s) running or queued on pool %r: %s",
                    len(names),
                    self._name,
                    ", ".join(sorted(names)),
                )


def _queued_label(work: Work) -> str:
    try:
        return work.label()
    except AttributeError:  # a thread took it since, and has let go of its function
        return "(started since)"


def _worker_of_current_thread() -> _Worker | None:
    worker: _Worker | None = getattr(_current, "worker", None)
    return worker


def _check_max_threads(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"max_threads must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"max_threads must be at least 1, not {value}")
    return value


def _check_idle_timeout(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"idle_timeout must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"idle_timeout must be >= 0 (or math.inf to keep the idle thread), not {value}")
    # Longer than a lock's wait can be told (about 292 years) is for ever.
    return math.inf if value > threading.TIMEOUT_MAX else float(value)


# Every pool alive, for interpreter exit.
_pools: Registry[Pool] = Registry()


def _shut_down_pools_at_exit() -> None:
    # Pool threads are daemon threads, so that an idle one never holds up exit. This
    # hook, run before the interpreter joins non-daemon threads, retires the waiting
    # threads at once and waits for the calls running or queued, so that none is lost,
    # not even one nobody awaits (a write, say). A call whose awaiter was cancelled was
    # given up on: it is not waited for, and its thread ends with the interpreter.
    pools = _pools.alive()
    for pool in pools:
        pool.shutdown(wait=False)
    for pool in pools:
        pool._run_queued_here()
        pool._wait_for_awaited_calls(EXIT_PATIENCE)


# The same private hook concurrent.futures.thread uses: atexit handlers run only after
# the interpreter has joined the non-daemon threads.
threading._register_atexit(_shut_down_pools_at_exit)  # type: ignore[attr-defined]
