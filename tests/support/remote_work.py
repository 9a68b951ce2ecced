"""Functions the tests send to worker processes (ProcessPool, Dask workers) and
subinterpreters (InterpreterPool).

They live in a module of their own, importing only the standard library, so that a
worker process imports them in milliseconds; a function must be importable by name to
be sent to another process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_gate: Any = None  # a multiprocessing Semaphore, set in each worker by hold_until


def hold_until(gate: Any) -> None:
    """A ProcessPool initializer: ``held()`` in this worker waits until ``gate`` is
    released once.

    A Semaphore used as a turnstile (each waiter passes it on), not an Event: when a
    pool breaks, its workers are killed, and an Event's ``set()`` then waits for ever
    for a killed waiter to wake.
    """
    global _gate
    _gate = gate


def held() -> int:
    """Waits until the test opens the gate; returns this worker's process id."""
    if not _gate.acquire(timeout=60):  # a hang guard only: the tests open it
        raise TimeoutError("the test never opened the gate")
    _gate.release()
    return os.getpid()


def touch(path: Path) -> str:
    """Leaves a trace that the call ran in some process; returns the file's name."""
    path.touch()
    return path.name


def fail(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    """Kills the worker process running it, as a crash or the OOM killer would."""
    os._exit(1)


def die_once(marker: Path) -> int:
    """Kills the first worker process that runs it; a retry returns its process id."""
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return os.getpid()


def wait_for(gate: Any) -> Any:
    """Waits until the test puts an item in ``gate``, a ``concurrent.interpreters`` Queue
    (which, unlike an Event, reaches a subinterpreter); returns the item."""
    item = gate.get(timeout=60)  # a hang guard only: the tests put the item
    gate.put(item)  # passed on, as a turnstile: one put releases every waiter
    return item


def report_and_wait(started: Any, gate: Any) -> int:
    """Puts this interpreter's id in ``started``, then waits for ``gate`` (both
    ``concurrent.interpreters`` Queues); returns the id."""
    from concurrent import interpreters

    me = interpreters.get_current().id
    started.put(me)
    wait_for(gate)
    return me


def interpreter_id() -> int:
    """The id of the interpreter running the call (0 is the main one)."""
    from concurrent import interpreters

    return interpreters.get_current().id


counter = 0  # module-level state, to show what an interpreter does not share


def bump() -> int:
    """Adds one to ``counter`` in the interpreter (or process) running it; returns it."""
    global counter
    counter += 1
    return counter
