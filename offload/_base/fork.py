"""What a child process starts afresh after ``os.fork()``.

The parent's threads do not exist in the child, and a lock that one of them held at the
fork stays held for ever there. Every object registered with ``start_fresh`` (pools,
inboxes, limiters, executors) gets fresh locks and forgets the calls in flight, in the
child, before any of the child's own code runs: those calls belong to the parent, whose
threads answer them. The registries themselves are ``Registry`` sets, whose locks are
made afresh first.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Generic, Protocol, TypeVar

__all__ = ["Registry", "ResetsAfterFork", "start_fresh"]

T = TypeVar("T")


class Registry(Generic[T]):
    """The live objects of one kind: any thread may add or list them, in a child too.

    Objects are registered rarely (a pool, a limiter, an inbox per loop), so a plain lock
    around a WeakSet is enough.
    """

    def __init__(self) -> None:
        self._objects: weakref.WeakSet[T] = weakref.WeakSet()
        self._lock = threading.Lock()
        _registries.append(self)  # type: ignore[arg-type]  # only its lock is touched there

    def add(self, obj: T) -> None:
        with self._lock:
            self._objects.add(obj)

    def alive(self) -> list[T]:
        with self._lock:
            return list(self._objects)


class ResetsAfterFork(Protocol):
    def _reset_after_fork(self) -> None:
        """In the child: fresh locks, nothing in flight; nothing else runs meanwhile."""


_registries: list[Registry[object]] = []
_resets: Registry[ResetsAfterFork] = Registry()


def start_fresh(obj: ResetsAfterFork) -> None:
    """Runs ``obj._reset_after_fork()`` now, for its first locks and empty state, and
    again in the child of every later fork: the one place that state is made."""
    obj._reset_after_fork()
    _resets.add(obj)


def _reset_in_child() -> None:
    for registry in _registries:
        registry._lock = threading.Lock()
    for obj in _resets.alive():
        obj._reset_after_fork()


os.register_at_fork(after_in_child=_reset_in_child)
