"""Taking a lock from the event loop's thread without forming a convoy under the GIL.

A thread that blocks on a ``threading.Lock`` releases the GIL while it waits, and is
handed the lock before it has the GIL back: it then holds the lock while it waits for
the GIL, which the thread that woke it holds, and which that thread gives up only once
it wants the lock again and blocks in turn. From then on the two threads take turns,
one context switch for every acquisition, until chance breaks the pattern. The event
loop submitting a batch of calls while a pool thread runs them, both taking the pool's
lock for each call, can go on so for the whole batch, two switches a call.

It takes two threads that block on the lock: so the loop's thread, where a call enters
the pool (``Pool._submit``, an Executor's and a Limiter's admission) and where outcomes
leave it (``Inbox._take_batch``), takes the lock with ``take()``. Finding it held, it
gives the GIL up for a moment (``time.sleep(0)``), which lets the holder, a thread
preempted inside its critical section, finish it; then it tries again, holding the
GIL. It blocks as ``acquire()`` does only after ``YIELDS`` such tries, so that a holder
that really holds the lock long is waited for without spinning. Pool threads take the
lock with ``with``, at C speed: a convoy needs both sides to block. Where the GIL is
disabled (the free-threaded build) no thread waits for it and no convoy forms, and
``take()`` blocks at once.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

__all__ = ["YIELDS", "gil_enabled", "take"]

#: Tries, each after giving the GIL up, before a thread blocks on a held lock.
YIELDS = 20

_sleep = time.sleep


def take(lock: threading.Lock) -> None:
    """``lock.acquire()``, giving the holder the GIL rather than blocking at once;
    release it with ``lock.release()``."""
    if lock.acquire(False):
        return
    if gil_enabled():
        for _ in range(YIELDS):
            _sleep(0)  # gives the GIL up: the holder may be waiting for it
            if lock.acquire(False):
                return
    lock.acquire()


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL now (always, before free-threaded 3.13;
    a free-threaded build turns it on for an extension module not made for it)."""
    return bool(getattr(sys, "_is_gil_enabled", lambda: True)())
