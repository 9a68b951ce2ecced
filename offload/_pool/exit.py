"""Interpreter exit: no call is lost. Pool threads are daemon threads, so that an idle
one never holds up exit; the hook here, run before the interpreter joins non-daemon
threads, retires the waiting threads and waits for the calls running or queued."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._base.log import logger
from .pool import every_pool

if TYPE_CHECKING:
    from .contract import Work
    from .pool import Pool

__all__ = ["EXIT_PATIENCE", "abandon_calls"]


#: Seconds interpreter exit waits for running calls before it says, on the ``offload``
#: logger, which calls it waits for (it goes on waiting).
EXIT_PATIENCE = 5.0


def _awaited_locked(pool: Pool) -> tuple[list[str], list[Work]]:
    """The calls not cancelled: the names of those running, and those queued (named
    outside the lock, since naming reads the function's attributes)."""
    running = [w.label for w in pool._workers if w.work is not None and not w.work.cancel_requested]
    return running, [work for work in pool._queue if not work.cancel_requested]


def abandon_calls(pool: Pool) -> None:
    """Treats the running calls as if their awaiters had been cancelled: inside them
    ``offload.cancelled()`` turns True, their outcomes are dropped, and exit does
    not wait for them. For a test's pool that a test left calls running in."""
    with pool._lock:
        for worker in pool._workers:
            if worker.work is not None:
                worker.work.cancel_requested = True


def _run_queued_here(pool: Pool) -> None:
    """At exit, once shut down: runs the queued calls on this thread. Python 3.12
    refuses to start a thread once the interpreter is shutting down, so a call queued
    for a thread still to be started would fail with ThreadStartError, unseen, and
    never run. A thread of the pool that does start pops calls under the same lock:
    each runs once either way."""
    while True:
        with pool._lock:
            work = pool._pop_locked()
            if work is None:
                return
            pool._completed += 1
        work.run()
        work.deliver()


def _wait_for_awaited_calls(pool: Pool, patience: float) -> None:
    """At exit, once shut down: waits until no call is left but cancelled ones; after
    ``patience`` seconds without one finishing, says which on the ``offload`` logger."""
    told = False
    while True:
        with pool._lock:
            running, queued = _awaited_locked(pool)
            if not running and not queued:
                return
            quiet = not pool._all_threads_gone.wait(timeout=None if told else patience)
        if quiet and not told:
            told = True
            names = running + [_queued_label(work) for work in queued]
            logger.warning(
                "offload: exit waits for %d call(s) running or queued on pool %r: %s",
                len(names),
                pool._name,
                ", ".join(sorted(names)),
            )


def _queued_label(work: Work) -> str:
    try:
        return work.label()
    except AttributeError:  # a thread took it since, and has let go of its function
        return "(started since)"


def _shut_down_pools_at_exit() -> None:
    # Pool threads are daemon threads, so that an idle one never holds up exit. This
    # hook, run before the interpreter joins non-daemon threads, retires the waiting
    # threads at once and waits for the calls running or queued, so that none is lost,
    # not even one nobody awaits (a write, say). A call whose awaiter was cancelled was
    # given up on: it is not waited for, and its thread ends with the interpreter.
    pools = every_pool.alive()
    for pool in pools:
        pool.shutdown(wait=False)
    for pool in pools:
        _run_queued_here(pool)
        _wait_for_awaited_calls(pool, EXIT_PATIENCE)


# The same private hook concurrent.futures.thread uses: atexit handlers run only after
# the interpreter has joined the non-daemon threads.
threading._register_atexit(_shut_down_pools_at_exit)  # type: ignore[attr-defined]
