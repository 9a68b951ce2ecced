"""Watching the queue (the pool's point 8): a backlog of short calls stays on the
threads already busy, and a thread is added only once the queue stops moving.

A pool grows in a chain: a starting thread takes the oldest queued call and starts the
next thread if calls are still queued (point 2). That is right for calls that block:
each gets a thread of its own, none waits for another to end. For calls shorter than a
thread's start it is not: the threads already busy take the queued calls one after
another faster than a new thread arrives, and each thread started only adds one more
taker of turns at the GIL, whose hand-offs cost CPU on every call.

So a starting thread that arrives while the busy threads took queued calls as fast as
one each since it was asked for does not take one. It becomes the idle thread, the one
waiting thread the invariant allows, and *watches* the queue: no call is handed to it
while calls are queued (a call that finds the queue empty is, as to any idle thread).
It looks at the queue after ``WATCH_FIRST_LOOK``, about what another start would take,
and, each time the queue has moved as fast again, twice as late as before, up to
``WATCH_LONGEST_LOOK``. Once the queue has not moved as fast, the busy threads are
blocked: it takes the oldest call over, as a starting thread would, and the chain goes
on. Calls that block still each get a thread: the first at the next look, the others
one start after another, where the threads the backlog would have started would have
been there already.

Many tasks making short calls form no backlog, but the same waste: each call handed to
a thread parked at its loop costs a wake, where a thread finishing its call would take
it sooner. So a thread that finishes a call shorter than ``SHORT_CALL``, with none
queued, while another thread is busy, none is waiting, others' calls have ended since
its own last one, and the calls that ended last, one more than there are busy threads,
were all short (``_short_run``: the busy threads' calls are short too), does not return
to the call's loop: it becomes the idle thread, watching. Beside calls that block (a
server's short call after each request's long one) it returns: no busy thread would
take the next call sooner than a wake. While it watches and a thread is busy, a
submitted call is queued for the busy threads, and nothing is woken for it. Its looks
are as above: while the busy threads end a call each between two looks, it watches on,
queue or none, and between two turns of the loops (none busy, none queued, calls ended
since the last look); once they have not, it takes the oldest queued call over (or,
none queued, is the idle thread again, not watching), and the queued calls after it are
handed on as a submitter would hand them.

Where the idle thread waits already, not watching, the finishing thread may not take
its place (one waiting thread), and returns: the idle thread is woken to watch instead
(*poked*: its wake released with no call handed to it, which ``_Worker.poked`` tells a
later claimer, so that the wake is released once per wait). The idle thread is poked,
and the watch goes on between turns, only while the calls that ended last were short
(``_short_run``): beside calls that block, a call handed on runs sooner.

This is the other half of Go's rule for blocking system calls (point 1 is the first):
a processor is handed to another thread only once a call has blocked past a monitor's
tick. Here the waiting thread is the monitor; the thread counts the invariant states do
not change.

Every method named ``*_locked`` runs with ``Pool._lock`` held, which guards the fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from .worker import _Worker

__all__ = ["SHORT_CALL", "WATCH_FIRST_LOOK", "WATCH_LONGEST_LOOK", "QueueWatch"]

#: Seconds from a watching thread's arrival to its first look at the queue.
WATCH_FIRST_LOOK = 0.0002
#: The longest between two looks: how much later than now a call that blocks behind a
#: backlog of short calls may reach a thread.
WATCH_LONGEST_LOOK = 0.002
#: Seconds a call ran under which it counts as short: over before a thread parked for the
#: next call would be woken and reach it.
SHORT_CALL = 0.0002


class QueueWatch:
    """The half of ``PoolThreads`` that watches the queue; its fields are Pool's."""

    _idle: _Worker | None
    _starting: bool
    _busy: int
    _queued: int
    _completed: int
    _watching: bool  # the idle thread watches the queue
    _seen_completed: int  # calls completed when the waiting thread was reserved, or last looked
    _watch_look: float  # seconds to the watching thread's next look
    _short_run: int  # calls completed short one after another, the last among them

    if TYPE_CHECKING:
        _lock: threading.Lock

        def _next_locked(self, worker: _Worker) -> str: ...

        def _call_done_locked(self) -> None: ...

    def _reset_watch(self) -> None:
        self._watching = False
        self._seen_completed = 0
        self._watch_look = WATCH_FIRST_LOOK
        self._short_run = 0

    def _count_done_locked(self, worker: _Worker, short: bool) -> bool:
        """Counts the call ``worker`` finished, short or not; returns whether others'
        calls ended since its own last one."""
        others_ended = self._completed != worker.seen_completed
        self._call_done_locked()
        worker.seen_completed = self._completed
        self._short_run = self._short_run + 1 if short else 0
        return others_ended

    def _busy_threads_run_short_calls_locked(self) -> bool:
        """Whether the calls that ended last, as many as there are busy threads and one
        more, were all short: the busy threads' calls are short too, by what they ran."""
        return self._short_run > self._busy

    def _queue_moves_locked(self) -> bool:
        """Whether the busy threads completed calls, one each at least, since the waiting
        thread was reserved or last looked: calls that short are over before another
        thread would reach them."""
        return self._busy > 0 and self._completed - self._seen_completed >= self._busy

    def _watch_locked(self, worker: _Worker) -> str:
        """Makes ``worker`` (arrived, or done with a short call) the idle thread, watching."""
        self._idle = worker
        worker.work = None
        self._begin_watch_locked()
        return "idle"

    def _begin_watch_locked(self) -> None:
        """The idle thread watches from now: its first look comes after WATCH_FIRST_LOOK."""
        self._watching = True
        self._seen_completed = self._completed
        self._watch_look = WATCH_FIRST_LOOK

    def _may_watch_locked(self) -> bool:
        """Whether a thread that finished a short call may watch rather than return: a
        thread is busy, none is waiting (idle + starting <= 1), and the busy threads'
        calls are short too, by those that ended last."""
        return (
            self._busy > 0
            and not self._starting
            and self._idle is None
            and self._busy_threads_run_short_calls_locked()
        )

    def _between_turns_locked(self) -> bool:
        """Whether the pool is between two turns of its loops' short calls: no thread is
        busy, none is queued, and calls ended since the last look, all of them short. The
        threads that ran them are on their way back to their loops, whose next calls are
        queued for them again once one is busy: the watch goes on rather than end at
        every turn."""
        ended = self._completed - self._seen_completed
        return not self._busy and not self._queued and 0 < ended <= self._short_run

    def _calls_wait_for_the_watch_locked(self) -> bool:
        """Whether a call is left queued, no thread woken for it, while the idle thread
        watches (asked only then): while a thread is busy, the busy threads take it, and
        the watching thread sees that they do; while the idle thread is on its way to
        watch (poked), it takes the call over at its first look, if no busy thread does
        first."""
        idle = self._idle
        return idle is not None and (self._busy > 0 or idle.poked)

    def _idle_watches_locked(self) -> _Worker | None:
        """For a thread that finished a short call and may not watch, the idle thread
        waiting (not watching) in its place: the idle thread watches now. Returned to be
        poked (its wake released after the lock), so that it waits for its first look
        rather than for its idle timeout; None if there is none to poke."""
        idle = self._idle
        if idle is None or idle.poked or self._watching or not self._busy or self._starting:
            return None
        if not self._busy_threads_run_short_calls_locked():
            return None  # the busy threads' calls may block: a call handed on runs sooner
        self._begin_watch_locked()
        idle.poked = True
        return idle

    def _woken_to_watch(self, worker: _Worker) -> bool:
        """Whether the thread was woken by a poke, not by a claim: it then waits on, for
        its first look at the queue."""
        with self._lock:
            return self._released_already_locked(worker)

    @staticmethod
    def _released_already_locked(worker: _Worker) -> bool:
        """Whether ``worker`` was poked and has not yet taken its wake: a claimer then
        hands it its call without releasing the wake again."""
        poked, worker.poked = worker.poked, False
        return poked

    def _look_at_queue_locked(self, worker: _Worker) -> str:
        """The watching thread's look: it watches on ("watching") while the busy threads
        end calls, or between two turns of them, else takes the oldest queued call over
        ("takes over"), or, none queued, does what any thread without a call does."""
        if self._queue_moves_locked() or self._between_turns_locked():
            self._seen_completed = self._completed
            self._watch_look = min(self._watch_look * 2, WATCH_LONGEST_LOOK)
            return "watching"
        self._idle = None
        self._watching = False
        state = self._next_locked(worker)
        return "takes over" if state == "busy" else state
