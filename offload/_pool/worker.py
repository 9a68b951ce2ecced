"""One pool thread's handle (``_Worker``), through which the pool hands it calls; how a
pool thread is started (``_launch``); and which call the current thread runs."""

from __future__ import annotations

import _thread
import contextvars
import sys
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .contract import Home, Work


class _Threads(Protocol):
    """The pool, as its threads' handles see it."""

    def _window_closed(self, worker: _Worker, work: Work, /) -> None: ...


__all__ = ["current_work"]


class _Worker:
    """One pool thread's handle, through which the pool hands it calls.

    ``wake`` is a lock used as a one-slot mailbox: it is held (locked) while the thread
    has no call handed to it, and released by whoever hands it one (or tells it to exit
    by handing it ``None``). The thread waits by acquiring it. Only the thread itself
    acquires it and only one claimer releases it per wait, so it never over-releases:
    ``poked`` says that it was released to make the idle thread watch the queue
    (watching.py), and a thread that claims it then hands it its call without a release.

    ``home`` and ``returned`` are set while the thread is returning: the loop it returns
    to, and the ``id()`` of the call whose outcome it delivered there, which names its
    window (the thread may be claimed and return again, for another call, before the
    first window closes). An id, not the call: an asyncio call is a Future, which holds
    its loop, and a loop that closes before the window does must not be kept alive by
    the thread until it sees the loop closed. While the window is open the inbox holds
    the call, so the id names no other call; once the loop has dropped it, the thread
    stops returning before it can return with another.
    """

    __slots__ = (
        "base_name",
        "home",
        "label",
        "on_its_way",
        "poked",
        "pool",
        "returned",
        "seen_completed",
        "wake",
        "work",
    )

    def __init__(self, pool: _Threads, base_name: str) -> None:
        self.pool = pool
        self.base_name = base_name
        self.wake = threading.Lock()
        self.wake.acquire()
        self.work: Work | None = None
        self.label = ""  # the name of its last call, for exit to say what it waits for
        self.home: Home | None = None
        self.returned: int | None = None
        self.on_its_way = False  # handed a call while parked, and not yet awake to run it
        self.poked = False  # its wake released to make it watch, not for a call
        self.seen_completed = -1  # the pool's count of calls completed after its last one

    def returning_with(self, work: Work, /) -> bool:
        # Read without the lock: ``returned`` moves on from a call and never back to it.
        return self.returned == id(work)

    def window_closed(self, work: Work, /) -> None:
        self.pool._window_closed(self, work)


# Thread.start() waits until the new thread runs, and the thread that starts one is the
# event loop's, or a pool thread with a call of its own to run: _launch() starts it as
# Thread.start() does, through the same internals of the threading module, without that
# wait (one OS thread per thread started, the starter never waiting); where they are
# not found, it calls Thread.start().
_start_joinable_thread = getattr(_thread, "start_joinable_thread", None)  # Python 3.13+
# Python 3.14 renamed the thread's handle, and its start() gives the thread the contextvars
# context that _bootstrap runs it in (a copy of the starter's where sys.flags says so).
_HANDLE = "_os_thread_handle" if sys.version_info >= (3, 14) else "_handle"
_LAUNCHES = all(hasattr(threading, name) for name in ("_limbo", "_active_limbo_lock")) and hasattr(
    threading.Thread, "_bootstrap"
)


def _launch(thread: threading.Thread) -> None:
    """``thread.start()``, but for its wait for the new thread to run (see above)."""
    if not _LAUNCHES:
        thread.start()
        return
    limbo, limbo_lock = threading._limbo, threading._active_limbo_lock  # type: ignore[attr-defined]
    with limbo_lock:
        limbo[thread] = thread
    try:
        if _start_joinable_thread is not None:
            if getattr(thread, "_context", False) is None:  # Python 3.14+
                inherit = getattr(sys.flags, "thread_inherit_context", False)
                thread._context = contextvars.copy_context() if inherit else contextvars.Context()  # type: ignore[attr-defined]
            handle = getattr(thread, _HANDLE)
            _start_joinable_thread(thread._bootstrap, handle=handle, daemon=thread.daemon)  # type: ignore[attr-defined]
        else:
            _thread.start_new_thread(thread._bootstrap, ())  # type: ignore[attr-defined]
    except BaseException:
        with limbo_lock:
            del limbo[thread]
        raise


_current = threading.local()


def current_work() -> Work | None:
    """The call the current thread is running for a pool, or None outside a pool call."""
    worker = _worker_of_current_thread()
    return None if worker is None else worker.work


def _worker_of_current_thread() -> _Worker | None:
    worker: _Worker | None = getattr(_current, "worker", None)
    return worker
