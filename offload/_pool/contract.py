"""The contract between the pool and what it runs: a ``Work`` is a call as the pool sees
it, and its ``Home`` the event loop it came from. Calls, limiters and executors fulfil
it; the pool's invariant (pool.py) holds for any Work. A ``Holder`` keeps calls back
from a pool (a Limiter): the pool waits for what it holds when it shuts down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._calls.delivery import Returning

__all__ = ["Holder", "Home", "Work"]


class Home(Protocol):
    """The event loop a call was submitted from, as the pool sees it (its inbox)."""

    def is_closed(self) -> bool:
        """Whether the loop has closed; any thread."""


class Work(Protocol):
    """A call as the pool sees it: something to run on a pool thread, then deliver.

    The rule of its flags, stated here once: ``queued`` and ``returning`` belong to the
    pool and are written under its lock. ``cancel_requested`` is written under the lock
    of whoever holds the call when it is cancelled: the pool's while the call is queued
    or running in it; a Limiter's while it holds the call back (and before the pool
    has it); a front's for a call it sent to its executor. It only ever turns True, so
    a reader that sees it True without that lock may act on it. The front end makes the
    call with the flags False and ``returning`` None: a cancel can reach the pool before
    the call does (see ``Pool._submit``). ``home`` is the loop the call came from, or
    None for a call from a plain thread. ``abandon_on_cancel`` is set by the front end
    before the call is submitted: whether a call that has started may be left running
    once ``cancel_requested`` is True, so that interpreter exit does not wait for it
    (exit.py); it turns True later only for the calls a test's pool gives up on. The rest
    is the front end's, which knows how the call's awaiter is woken.
    """

    queued: bool
    cancel_requested: bool
    abandon_on_cancel: bool
    returning: Returning | None
    """The thread returning to ``home`` with the call's outcome, if any (the one that ran
    it, or one parked there in its place, see ``_hand_window_on_locked``): ``deliver()`` must
    have the loop call ``returning.window_closed(self)`` once it has run the awaiter's
    continuation (the inbox does, see _calls/delivery.py)."""

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


class Holder(Protocol):
    """What holds calls back from a pool and passes them on later (a Limiter).

    A call it accepted before the pool shut down is the pool's to run all the same, so it
    passes such calls on with ``Pool._submit(work, admitted=True)``, and the pool's
    ``shutdown(wait=True)`` and interpreter exit wait until it holds none.
    """

    def held_calls(self) -> list[Work]:
        """The calls held back, and those on their way from it to the pool; any thread.
        The pool asks with its own lock held: a Holder never takes the pool's lock
        while it holds its own."""
