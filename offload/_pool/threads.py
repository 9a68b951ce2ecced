"""The pool's threads' life (``PoolThreads``, the half of ``Pool`` that runs on them):
start, serve calls, return to a loop, wait, retire; each one's handle is a ``_Worker``
(worker.py). The invariant, and which lock guards which field, are stated once, in pool.py;
every method here named ``*_locked`` runs with ``Pool._lock`` held.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from .._base.errors import ThreadStartError, chained
from . import watching
from .returning import ReturningThreads
from .worker import _current, _launch, _Worker

if TYPE_CHECKING:
    from collections import deque

    from .contract import Home, Work

__all__ = ["LOOP_CHECK_INTERVAL", "PoolThreads"]

#: Seconds between a returning thread's looks at whether its loop has closed. A loop
#: closed between settling an outcome and turning twice drops the callbacks that would
#: close the window (asyncio's ``close()`` clears its ready queue), so the thread looks
#: for itself; a window normally closes within microseconds, before the first look.
LOOP_CHECK_INTERVAL = 0.25

# The clock of the idle timeout (the tests move one of their own).
_monotonic = time.monotonic


class PoolThreads(ReturningThreads, watching.QueueWatch):
    """The thread side of ``Pool``: its fields are Pool's (see ``Pool._reset_after_fork``)."""

    _name: str
    _max_threads: int
    _idle_timeout: float
    _closed: bool
    _lock: threading.Lock
    _all_threads_gone: threading.Condition
    _queue: deque[Work]
    _queued: int
    _workers: set[_Worker]
    _threads: int
    _peak_threads: int
    _spawned: int
    _names_given: int
    _exiting: bool
    _delivering: int
    _on_its_way: int

    # --- starting threads ---

    def _reserve_thread_locked(self) -> str | None:
        """Counts in a starting thread if the invariant and the bound allow one; its name."""
        if self._starting or self._idle is not None or self._threads >= self._max_threads or self._exiting:
            return None
        self._starting = True
        self._seen_completed = self._completed
        self._threads += 1
        self._peak_threads = max(self._peak_threads, self._threads)
        self._names_given += 1
        return f"{self._name}-{self._names_given}"

    def _start_thread(self, name: str) -> None:
        worker = _Worker(self, name)
        thread = threading.Thread(target=self._serve, args=(worker,), name=name, daemon=True)
        try:
            _launch(thread)
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
            started = time.perf_counter()
            work.run()
            state = self._finish(worker, work, short=time.perf_counter() - started < watching.SHORT_CALL)
            del work  # the thread may wait long: it holds nothing of the call meanwhile
            # Not renamed back while it waits: that would cost every sequential call two
            # renames on the path that delivers its result.
            work = self._after(worker, state)

    def _first_work(self, worker: _Worker) -> Work | None:
        with self._lock:
            self._starting = False
            self._spawned += 1
            self._workers.add(worker)
            worker.seen_completed = self._completed
            if self._queued and not self._closed and self._queue_moves_locked():
                state = self._watch_locked(worker)
            else:
                state = self._next_locked(worker)
            next_name = self._reserve_thread_locked() if state == "busy" and self._queued else None
        if next_name is not None:
            self._start_thread(next_name)
        return self._after(worker, state)

    def _finish(self, worker: _Worker, done: Work, short: bool) -> str:
        """Settles the thread's next state (point 3), delivers ``done``, and returns the
        state: see ``_after``. ``short``: ``done`` ran shorter than ``SHORT_CALL``."""
        poked = None
        with self._lock:
            closed = self._closed
            if closed:
                state = "busy"  # for now: settled after the delivery, below
                self._delivering += 1
            else:
                others_ended = self._count_done_locked(worker, short)
                home = done.home
                # A cancelled awaiter has resumed already: no continuation to wait for.
                if home is None or done.cancel_requested:
                    state = self._next_locked(worker)
                elif self._queued:
                    state = self._next_locked(worker)
                    self._hand_window_on_locked(home, done)
                elif short and others_ended and self._may_watch_locked():
                    state = self._watch_locked(worker)
                elif not short and self._lets_threads_go_locked(home):
                    state = self._next_locked(worker)
                else:
                    poked = self._idle_watches_locked() if short and others_ended else None
                    state = "returning"
                    self._return_locked(worker, home, done)
        self._wake_or_start(poked, None)
        self._deliver(done)
        if closed:
            # Shut down, no thread returns or idles, so the call counts as running until
            # it is delivered: the Limiter it tells may pass on a call it held (point 7),
            # which this thread then takes, and exit waits until then.
            with self._lock:
                self._delivering -= 1
                self._call_done_locked()
                self._all_threads_gone.notify_all()  # a call less for exit to wait for
                state = self._next_locked(worker)
        return state

    def _call_done_locked(self) -> None:
        self._busy -= 1
        self._completed += 1

    @staticmethod
    def _deliver(done: Work) -> None:
        try:
            done.deliver()
        except BaseException as exc:
            # The thread's next state is settled: it may be the idle or a returning
            # thread, to which the next call is handed. Were it to die here, that call
            # would never run (the hand-over to a stopping thread of anyio#323). Report
            # the failure as an uncaught exception in a thread is reported, and serve on.
            thread = threading.current_thread()
            threading.excepthook(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, thread)))

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
            elif self._watching and self._idle is worker:  # unlocked: a poke wakes it to read it
                timeout = min(timeout, self._watch_look)
            if worker.wake.acquire(timeout=-1 if math.isinf(timeout) else max(timeout, 0)):
                if worker.poked and self._woken_to_watch(worker):  # unlocked: set before the wake
                    continue
                return self._arrived(worker)
            with self._lock:
                state = self._on_wait_timeout_locked(worker, expired=_monotonic() >= deadline)
                woken, name = self._pass_oldest_on_locked() if state == "takes over" else (None, None)
            self._wake_or_start(woken, name)
            if state == "watching":
                deadline = _monotonic() + self._idle_timeout  # not idle: busy threads end calls
            if state in ("busy", "gone", "takes over"):
                return worker.work
            if state == "claimed":
                # Claimed between the timeout and taking the lock: the claimer has handed
                # over a call (or None, to exit) and releases wake just after the lock.
                worker.wake.acquire()
                return self._arrived(worker)

    def _queued_for_threads_on_their_way_locked(self) -> bool:
        """Whether the queued calls may wait for a thread on its way to pass them on: one
        is, and each has a parked thread it can pass them to (point 1)."""
        return bool(self._on_its_way) and self._queued <= self._returning + (self._idle is not None)

    def _on_its_way_locked(self, worker: _Worker) -> _Worker:
        """Counts ``worker``, parked and just handed a call, as on its way to it."""
        worker.on_its_way = True
        self._on_its_way += 1
        return worker

    def _arrived(self, worker: _Worker) -> Work | None:
        """The call a woken thread was handed. Calls submitted while it was on its way
        were queued for it (point 1): it passes the oldest on before it runs its own."""
        if worker.on_its_way:
            with self._lock:
                worker.on_its_way = False
                self._on_its_way -= 1
                woken, name = self._pass_oldest_on_locked()
            self._wake_or_start(woken, name)
        return worker.work

    def _pass_oldest_on_locked(self) -> tuple[_Worker | None, str | None]:
        """Finds a thread for the oldest queued call, as its submitter would (point 1)."""
        oldest = self._oldest_queued_locked() if not self._closed else None
        return self._serve_queue_locked(oldest.home) if oldest is not None else (None, None)

    def _wake_or_start(self, woken: _Worker | None, name: str | None) -> None:
        """Wakes the thread a call was handed to, or starts the thread reserved for one."""
        if woken is not None:
            woken.wake.release()
        elif name is not None:
            self._start_thread(name)

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
            if worker.poked:  # as its wait timed out: it takes the poke's wake before it looks
                return "watching"
            if self._watching:
                return self._look_at_queue_locked(worker)
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

    def _serve_queue_locked(self, home: Home | None) -> tuple[_Worker | None, str | None]:
        """Finds a thread for the oldest queued call (point 1): a thread returning to
        ``home``, or the idle thread, to which it hands the call and which it returns
        for waking; else the name of a thread to start; else, at the bound, a thread
        returning to some other loop."""
        if self._watching and self._calls_wait_for_the_watch_locked():
            return None, None
        worker = self._parked_locked(home)
        if worker is None:
            name = self._reserve_thread_locked()
            if name is not None or not self._homes or self._threads < self._max_threads:
                return None, name
            worker = next(iter(self._homes.values()))[0]
            self._stop_returning_locked(worker)
        work = self._pop_locked()
        assert work is not None  # the caller queued one, or found one queued
        self._busy += 1
        worker.work = work
        return self._on_its_way_locked(worker), None

    def _parked_locked(self, home: Home | None) -> _Worker | None:
        """Takes the thread that returned first to ``home``, else the idle thread, if any,
        which stops watching the queue (point 8) if it did."""
        returning = self._homes.get(home) if home is not None else None
        if returning is None:
            idle, self._idle = self._idle, None
            self._watching = False
            return idle
        worker = returning[0]
        self._stop_returning_locked(worker)
        self._return_used_locked(home)
        return worker

    def _enqueue_locked(self, work: Work) -> None:
        work.queued = True
        self._queue.append(work)
        self._queued += 1

    def _oldest_queued_locked(self) -> Work | None:
        while self._queued:
            work = self._queue[0]
            if not work.cancel_requested:
                return work
            self._queue.popleft()  # cancelled while queued: skipped, see Pool._cancel
        return None

    def _pop_locked(self) -> Work | None:
        work = self._oldest_queued_locked()
        if work is not None:
            self._queue.popleft()
            self._queued -= 1
            work.queued = False
        return work

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
