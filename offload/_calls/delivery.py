"""Outcomes of offloaded calls, carried back to the event loop's thread in batches.

Each pool thread that finishes a call puts it in the inbox of the loop that awaits it.
Only the put that finds the inbox without a pending wake-up wakes the loop (asyncio's
``call_soon_threadsafe``, one write to the loop's self-pipe; trio's ``run_sync_soon``);
the others just append. The loop then settles the whole batch in one callback. When
many calls finish while the loop is busy, the loop is woken once for all of them rather
than once per call, as libuv's ``uv_async_send`` coalesces.

An outcome may come with the pool thread that delivered it, *returning* to the loop (see
the pool's invariant): the loop's next calls go to that thread first, until the window
closes. The inbox closes it once the loop has turned ``WINDOW_TURNS`` times after
settling the outcome: the first turn runs the callbacks the settling scheduled (the
awaiting task's step, a ``gather()``'s or a chained future's callback), the second those
that they scheduled in turn (the task behind that ``gather()``, or
``asyncio.to_thread``). The turns after those keep the thread for the loop's next calls
when a thread already awake took this awaiter's: the pool queues a call for a thread on
its way rather than wake another (point 1 of its invariant), so the thread that would
have been woken stays returning, and is there for the next call that needs it, rather
than leave and be started anew. Never a timer: a loop that is busy holds its returning
threads until it turns, no longer. And no turns for nothing: an asyncio loop that has
nothing else to run when the inbox looks closes the windows then, since no turn would
bring its next call before it wakes for I/O, and looking again each turn would keep it
from waiting (uvloop does not say so, and turns on).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from .._base.fork import start_fresh
from .._base.lock import take
from .._base.log import logger

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

__all__ = [
    "WINDOW_TURNS",
    "AsyncioInbox",
    "Inbox",
    "Settleable",
    "TrioInbox",
    "asyncio_inbox_for",
    "trio_inbox_for",
]


class Returning(Protocol):
    def returning_with(self, item: Any, /) -> bool:
        """Whether the thread still returns with ``item``'s outcome; any thread, no lock:
        once False, never True again."""

    def window_closed(self, item: Any, /) -> None:
        """The continuation of ``item``'s awaiter has run (on the loop's thread), or
        never will (the loop is gone: any thread)."""


class Settleable(Protocol):
    returning: Returning | None
    """The pool thread returning to this loop with the outcome, if any."""
    window_turns: int
    """Turns of the loop after settling before the window closes (``WINDOW_TURNS``, or
    more for an awaiter that yields that many times before its next call)."""

    def settle(self) -> None:
        """Hands the outcome to its awaiter; runs on the loop's thread."""


# Turns of the loop after an outcome is settled before its window closes: see above.
WINDOW_TURNS = 6


class Inbox:
    """The outcomes waiting for one event loop's thread.

    ``_lock`` guards ``_items`` and ``_wakeup_pending``. ``_wakeup_pending`` is True from
    the put that schedules ``_drain`` until ``_drain`` takes the batch, so exactly one
    wake-up is in flight whenever items are waiting. Subclasses say how to schedule
    ``_drain`` on the loop's thread, and where a faulty outcome is reported.
    """

    __slots__ = ("__weakref__", "_items", "_lock", "_wakeup_pending")

    def __init__(self) -> None:
        start_fresh(self)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Settleable] = []
        self._wakeup_pending = False

    def put(self, item: Settleable) -> None:
        """Queues ``item`` for the loop; any thread; never waits for the loop."""
        with self._lock:
            self._items.append(item)
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        try:
            scheduled = self._schedule_drain()
        except BaseException:
            # Left marked pending, the inbox would only ever append: no outcome would
            # reach this loop again. The next put tries to wake it, for all of them.
            with self._lock:
                self._wakeup_pending = False
            raise
        if not scheduled:
            # The loop is closed or gone: nobody can await these outcomes any more, so
            # they are dropped rather than raised in a pool thread, and the threads
            # returning with them, which the loop will never claim, go back at once.
            for item in self._take_batch():
                returning, item.returning = item.returning, None
                if returning is not None:
                    returning.window_closed(item)

    def _take_batch(self) -> list[Settleable]:
        take(self._lock)  # on the loop's thread, most often: see _base/lock.py
        try:
            items, self._items = self._items, []
            self._wakeup_pending = False
        finally:
            self._lock.release()
        return items

    def _drain(self) -> None:
        returned = []
        turns = 0
        for item in self._take_batch():
            try:
                item.settle()
            except Exception as exc:  # one faulty item must not strand the rest
                self._report(exc)
            if item.returning is not None:
                returned.append(item)
                turns = max(turns, item.window_turns)
        # No awaiter has run yet, so none has taken its thread back: look next turn.
        if returned and not self._call_soon(self._close_windows, returned, turns - 1):
            self._close_windows(returned, 0)

    def _close_windows(self, items: list[Settleable], turns: int) -> None:
        """Closes the windows of ``items`` after ``turns`` more turns of the loop, or now
        if the loop cannot take another callback (it is closing).

        Most awaiters take their thread back in the first turn: the windows still open
        are looked at once a turn, without a lock, and the turns stop when none is.
        """
        still_open = []
        for item in items:
            returning = item.returning
            if returning is not None and returning.returning_with(item):
                still_open.append(item)
            else:
                item.returning = None
        if not still_open:
            return
        if turns and not self._goes_quiet() and self._call_soon(self._close_windows, still_open, turns - 1):
            return
        for item in still_open:
            returning, item.returning = item.returning, None
            returning.window_closed(item)  # type: ignore[union-attr]  # set while open

    def _schedule_drain(self) -> bool:
        """Schedules ``_drain`` on the loop's thread; False if the loop is gone."""
        raise NotImplementedError

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> bool:
        """From the loop's thread: runs ``fn(*args)`` on its next turn; False if closing."""
        raise NotImplementedError

    def _goes_quiet(self) -> bool:
        """From the loop's thread: whether nothing else runs in this turn after the
        caller, nor in the next, so that the loop waits for I/O or a timer next. No
        awaiter's call can come before it wakes, and turns counted on would only keep
        it from waiting. False where the loop does not say."""
        return False

    def is_closed(self) -> bool:
        """Whether the loop is closed; any thread."""
        return False

    def _report(self, exc: Exception) -> None:
        logger.error("offload failed to deliver an outcome", exc_info=exc)


class AsyncioInbox(Inbox):
    __slots__ = ("_loop_ref",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: an inbox outlives its loop in a thread-local cache and in
        # the calls still running, and must not keep a closed loop alive.
        self._loop_ref = weakref.ref(loop)
        super().__init__()

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._loop_ref() is loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop_ref()

    def _schedule_drain(self) -> bool:
        loop = self._loop_ref()
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # closed
            return False
        return True

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> bool:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return False
        loop.call_soon(fn, *args)
        return True

    def _goes_quiet(self) -> bool:
        # asyncio's own loops run, in a turn, the callbacks that were ready as it began,
        # and keep the callbacks of the turn after them in the same deque; they wait for
        # I/O next unless that deque holds one or they are stopping (_run_once asks the
        # same). uvloop keeps its own out of reach.
        loop = self._loop_ref()
        ready = getattr(loop, "_ready", None)
        return type(ready) is deque and not ready and getattr(loop, "_stopping", None) is False

    def is_closed(self) -> bool:
        loop = self._loop_ref()
        return loop is None or loop.is_closed()

    def _report(self, exc: Exception) -> None:
        loop = self._loop_ref()
        if loop is not None:
            loop.call_exception_handler({"message": "offload failed to deliver an outcome", "exception": exc})


class TrioInbox(Inbox):
    __slots__ = ("_token",)

    def __init__(self, token: Any) -> None:
        self._token = token
        super().__init__()

    def serves(self, token: Any) -> bool:
        return self._token is token

    def _schedule_drain(self) -> bool:
        return self._call_soon(self._drain)

    # No is_closed(): trio runs the callbacks queued before its run ends, and refuses
    # later ones, so every window closes.
    def _call_soon(self, fn: Callable[..., None], *args: Any) -> bool:
        import trio

        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            return False
        return True


_cache = threading.local()


def asyncio_inbox_for(loop: asyncio.AbstractEventLoop) -> AsyncioInbox:
    """The inbox of ``loop``, the running loop of the calling thread."""
    inbox: AsyncioInbox | None = getattr(_cache, "asyncio", None)
    if inbox is None or not inbox.serves(loop):
        inbox = _cache.asyncio = AsyncioInbox(loop)
    return inbox


def trio_inbox_for(token: Any) -> TrioInbox:
    """The inbox of the trio run whose token is ``token``, running in this thread."""
    inbox: TrioInbox | None = getattr(_cache, "trio", None)
    if inbox is None or not inbox.serves(token):
        inbox = _cache.trio = TrioInbox(token)
    return inbox
