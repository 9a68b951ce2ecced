"""Interpreter exit: no call is lost. Pool threads are daemon threads, so that an idle
one never holds up exit; the hook here, run before the interpreter joins non-daemon
threads, retires the waiting threads and sees every call submitted to a pool through
to its end: those running, those queued, and those a Limiter holds.

What exit does with each call, on every pool:

- running: waited for, even if its awaiter was cancelled (as ``asyncio.to_thread``'s
  and anyio's calls are): a write cut short at exit is lost in silence. But a call
  that may be abandoned (``abandonable()``, anyio's ``abandon_on_cancel=True``) and
  whose awaiter was cancelled is not waited for: its thread ends with the interpreter.
- queued, or held by a Limiter: run, the Limiter's bound kept; on the exiting thread
  when no pool thread takes them, since no thread may start at exit (Python 3.12
  refuses to start one).
- queued and cancelled: never run, as at any other time.

While it waits, after ``EXIT_PATIENCE`` seconds without a call finishing, it says which
calls it waits for, on the ``offload`` logger.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._base.log import logger
from .pool import every_pool
from .worker import _current, _Worker, _worker_of_current_thread

if TYPE_CHECKING:
    from .contract import Work
    from .pool import Pool

__all__ = ["EXIT_PATIENCE", "abandon_calls"]


#: Seconds interpreter exit waits for running calls before it says, on the ``offload``
#: logger, which calls it waits for (it goes on waiting).
EXIT_PATIENCE = 5.0


def abandon_calls(pool: Pool) -> None:
    """Treats the running calls as abandoned by cancelled awaiters: inside them
    ``offload.cancelled()`` turns True, their outcomes are dropped, and exit does
    not wait for them. For a test's pool that a test left calls running in."""
    with pool._lock:
        for worker in pool._workers:
            if worker.work is not None:
                worker.work.cancel_requested = worker.work.abandon_on_cancel = True


def _awaited_running_locked(pool: Pool) -> list[str]:
    """The names of the running calls exit waits for."""
    return [
        worker.label
        for worker in pool._workers
        if worker.work is not None and not (worker.work.cancel_requested and worker.work.abandon_on_cancel)
    ]


def _see_calls_through(pool: Pool, patience: float) -> None:
    """Once the pool is shut down: runs its queued calls here (no thread can start), and
    waits until no call is left running, queued or held but abandoned ones. After
    ``patience`` seconds without one finishing, says which on the ``offload`` logger."""
    told = False
    while True:
        # Held calls first: one on its way from a Limiter into the queue is counted held
        # until it is queued, so it is seen in one place or the other.
        with pool._lock:
            held = pool._held_locked()
            work = pool._pop_locked()
            if work is None:
                running = _awaited_running_locked(pool)
                if not (running or held):
                    return
                quiet = not pool._all_threads_gone.wait(timeout=None if told else patience)
        if work is not None:
            _run_here(pool, work)
        elif quiet and not told:
            told = True
            _say_what_exit_waits_for(pool, running, held)


def _run_here(pool: Pool, work: Work) -> None:
    """Runs and delivers ``work``, taken from the queue, on the exiting thread as a pool
    thread would: inside, ``offload.cancelled()`` and ``call_on_loop()`` find the call."""
    previous = _worker_of_current_thread()
    worker = _current.worker = _Worker(pool, threading.current_thread().name)
    worker.work = work
    try:
        work.run()
    finally:
        _current.worker = previous
    with pool._lock:
        pool._completed += 1
    pool._deliver(work)


def _say_what_exit_waits_for(pool: Pool, running: list[str], held: list[Work]) -> None:
    names = running + [_label(work) for work in held]
    logger.warning(
        "offload: exit waits for %d call(s) running or held on pool %r: %s",
        len(names),
        pool._name,
        ", ".join(sorted(names)),
    )


def _label(work: Work) -> str:
    # Named outside the pool's lock: naming reads the function's attributes.
    try:
        return work.label()
    except AttributeError:  # a thread took it since, and has let go of its function
        return "(started since)"


def _shut_down_pools_at_exit() -> None:
    pools = every_pool.alive()
    for pool in pools:
        with pool._lock:
            pool._exiting = True
        pool.shutdown(wait=False)
    for pool in pools:
        _see_calls_through(pool, EXIT_PATIENCE)


# The same private hook concurrent.futures.thread uses: atexit handlers run only after
# the interpreter has joined the non-daemon threads.
threading._register_atexit(_shut_down_pools_at_exit)  # type: ignore[attr-defined]
