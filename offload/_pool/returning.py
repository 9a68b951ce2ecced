"""Threads returning to their loop (the pool's points 3 and 4), and the loops that let
them go.

A thread that finishes a call from an event loop, with none queued, returns to that
loop: the awaiter's next call, submitted as soon as the outcome arrives, takes it back
instead of waking or starting another. Its window closes once the loop has turned a few
times (see ``Inbox``, in _calls/delivery.py); a thread whose window closes unclaimed
does what a thread without a call does, and most often that is to leave the pool (one
thread is idle already). Returning then cost a park and a wake more than leaving at
once: the loop's thread wakes the thread only to let it go.

Some loops do that to every thread they get back: a burst of calls gathered at once,
then a pause longer than the window before the next burst, as a server answering
requests in bursts does. So the pool counts, for each loop, the windows in a row whose
thread left when it closed (``_unused_returns``). Once ``UNUSED_RETURNS`` have, a thread
that finishes a call from that loop (not a short one, see watching.py) while another is
returning there already does not return: it becomes the idle thread, or leaves, at once.
One thread at a time still returns, so the pool sees when the loop calls again within
its windows: a window that is of use (the loop's call claims its thread, or it closes
into a queued call) sets the count back to zero, and every thread returns again.

A stream of calls does not trip it: each window is of use, or closes into the idle
thread's place; nor do rounds of calls gathered back to back, whose next round claims
some of the threads of the last.

Every method named ``*_locked`` runs with ``Pool._lock`` held, which guards the fields.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from .contract import Home, Work
    from .worker import _Worker

__all__ = ["LOOPS_COUNTED", "UNUSED_RETURNS", "ReturningThreads"]

#: Windows in a row, at one loop, whose thread left the pool as it closed, after which
#: that loop gets one returning thread at a time. Rounds of calls gathered back to back
#: let some threads go between two rounds, and the next round claims others, which sets
#: the count back: so the limit is above what one round lets go (rounds of 20 start
#: about 13 threads each in ``python -m benchmarks.returns``, as many as the round before
#: let go), and such rounds keep their threads as before.
UNUSED_RETURNS = 20

#: The loops whose unused returns are counted at once; past it the counts start anew, so
#: that the loops a long-lived pool has served and that are gone are not kept.
LOOPS_COUNTED = 64


class ReturningThreads:
    """The half of ``PoolThreads`` that returns threads to their loops; its fields are
    Pool's."""

    _lock: threading.Lock
    _homes: dict[Home, deque[_Worker]]
    _returning: int
    _unused_returns: dict[Home, int]  # windows in a row whose thread left, by loop

    if TYPE_CHECKING:

        def _next_locked(self, worker: _Worker) -> str: ...

        def _on_its_way_locked(self, worker: _Worker) -> _Worker: ...

    def _return_locked(self, worker: _Worker, home: Home, done: Work) -> None:
        """Counts ``worker`` returning to ``home`` with ``done``'s outcome (point 3)."""
        worker.work = None
        worker.home, worker.returned = home, id(done)
        done.returning = worker
        returning = self._homes.get(home)
        if returning is None:
            returning = self._homes[home] = deque()
        returning.append(worker)
        self._returning += 1

    def _window_closed(self, worker: _Worker, work: Work) -> None:
        """``work``'s awaiter has resumed without claiming ``worker`` (on the loop's
        thread), or never will (its loop is gone); if the thread is still returning for
        ``work``, it does what point 3 says."""
        with self._lock:
            if worker.returned != id(work):
                return  # claimed since, or released by shutdown
            home = worker.home
            self._stop_returning_locked(worker)
            state = self._next_locked(worker)
            if state == "busy":
                self._on_its_way_locked(worker)
                self._return_used_locked(home)
            elif state == "gone":
                self._return_unused_locked(home)
        if state != "idle":
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

    def _hand_window_on_locked(self, home: Home, done: Work) -> None:
        """This thread takes a queued call rather than return to ``home`` with ``done``:
        a thread parked there, if any, returns with ``done`` in its place. It is one a
        call was queued for rather than woken (point 1), and its own window would close
        before the loop's next calls come: so it stays for them, as this thread would
        have, rather than leave and be started anew."""
        returning = self._homes.get(home)
        if returning:
            parked = returning.popleft()
            returning.append(parked)
            parked.returned = id(done)
            done.returning = parked

    # --- the loops that let their threads go ---

    def _lets_threads_go_locked(self, home: Home) -> bool:
        """Whether a thread that finished a call from ``home`` (not a short one) leaves or
        idles at once rather than return: ``home``'s last UNUSED_RETURNS windows let
        their thread go, and a thread is returning there already."""
        return home in self._homes and self._unused_returns.get(home, 0) >= UNUSED_RETURNS

    def _return_used_locked(self, home: Home | None) -> None:
        """A window at ``home`` was of use: its thread was claimed, or took a queued call."""
        if self._unused_returns and home in self._unused_returns:
            del self._unused_returns[home]

    def _return_unused_locked(self, home: Home | None) -> None:
        """A window at ``home`` closed, and its thread left the pool."""
        if home is None:
            return
        counts = self._unused_returns
        if home not in counts and len(counts) >= LOOPS_COUNTED:
            counts.clear()
        counts[home] = counts.get(home, 0) + 1
