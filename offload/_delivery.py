"""Outcomes of offloaded calls, carried back to an asyncio event loop in batches.

Each pool thread that finishes a call puts it in the loop's inbox. Only the put that
finds the inbox without a pending wake-up wakes the loop (``call_soon_threadsafe``, one
write to the loop's self-pipe); the others just append. The loop then settles the whole
batch in one callback. When many calls finish while the loop is busy, the loop is woken
once for all of them rather than once per call, as libuv's ``uv_async_send`` coalesces.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

__all__ = ["LoopInbox", "Settleable", "inbox_for"]


class Settleable(Protocol):
    def settle(self) -> None:
        """Hands the outcome to its awaiter; runs on the loop's thread."""


class LoopInbox:
    """The outcomes waiting for one event loop.

    ``_lock`` guards ``_items`` and ``_wakeup_pending``. ``_wakeup_pending`` is True from
    the put that schedules ``_drain`` until ``_drain`` takes the batch, so exactly one
    wake-up is in flight whenever items are waiting.
    """

    __slots__ = ("__weakref__", "_items", "_lock", "_loop_ref", "_wakeup_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: an inbox outlives its loop in a thread-local cache and in
        # the calls still running, and must not keep a closed loop alive.
        self._loop_ref = weakref.ref(loop)
        self._reset()
        with _inboxes_lock:
            _inboxes.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Settleable] = []
        self._wakeup_pending = False

    def serves(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self._loop_ref() is loop

    def put(self, item: Settleable) -> None:
        """Queues ``item`` for the loop; any thread; never waits for the loop."""
        with self._lock:
            self._items.append(item)
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        loop = self._loop_ref()
        try:
            if loop is None:
                raise RuntimeError("the event loop is gone")
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop is closed (or collected): nobody can await these outcomes any
            # more, so they are dropped rather than raised in a pool thread.
            self._take_batch()

    def _take_batch(self) -> list[Settleable]:
        with self._lock:
            items, self._items = self._items, []
            self._wakeup_pending = False
        return items

    def _drain(self) -> None:
        for item in self._take_batch():
            try:
                item.settle()
            except Exception as exc:  # one faulty item must not strand the rest
                loop = self._loop_ref()
                if loop is not None:
                    loop.call_exception_handler(
                        {"message": "offload failed to deliver an outcome", "exception": exc}
                    )


_cache = threading.local()
_inboxes: weakref.WeakSet[LoopInbox] = weakref.WeakSet()
_inboxes_lock = threading.Lock()


def inbox_for(loop: asyncio.AbstractEventLoop) -> LoopInbox:
    """The inbox of ``loop``, the running loop of the calling thread."""
    inbox: LoopInbox | None = getattr(_cache, "inbox", None)
    if inbox is None or not inbox.serves(loop):
        inbox = _cache.inbox = LoopInbox(loop)
    return inbox


def _reset_inboxes_in_child() -> None:
    # A pool thread may have held an inbox's lock at the fork; that thread does not
    # exist in the child, so the lock would stay held forever.
    global _inboxes_lock
    _inboxes_lock = threading.Lock()
    for inbox in list(_inboxes):
        inbox._reset()


os.register_at_fork(after_in_child=_reset_inboxes_in_child)
