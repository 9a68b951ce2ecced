"""The calls a front end has passed on and not yet seen finish, and whether it still
takes new ones: what ``shutdown(wait=True)`` waits on. Written once for ``Executor`` and
``ExecutorFront``; a Pool counts its threads instead (see pool.py)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Generic, TypeVar

from .lock import take

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InFlight"]

K = TypeVar("K")
V = TypeVar("V")


class InFlight(Generic[K, V]):
    """Each call in flight, with a value of the owner's (the executor's future, say).

    ``lock`` guards the calls and ``closed``, and what of its owner's state ``add()``
    checks in the same step. Nobody waits while holding it but ``wait_until_none_left()``,
    which releases it as it waits.
    """

    def __init__(self) -> None:
        self.closed = False
        self.forget_calls()

    def forget_calls(self) -> None:
        """No call in flight, under a fresh lock; ``closed`` stays. For the child after a
        fork, where the parent's calls never finish and its lock may be held for ever."""
        self.lock = threading.Lock()
        self._none_left = threading.Condition(self.lock)
        self._calls: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: K, value: V, refusal: Callable[[], BaseException | None] | None = None) -> None:
        """Counts ``call`` in, unless ``refusal()``, asked under the lock, gives an error,
        which it raises then. From the loop's thread, most often: see lock.py."""
        take(self.lock)
        try:
            error = None if refusal is None else refusal()
            if error is None:
                self._calls[call] = value
        finally:
            self.lock.release()
        if error is not None:
            raise error

    def get(self, call: K) -> V | None:
        """The value of ``call``, if it is in flight; with ``lock`` held."""
        return self._calls.get(call)

    def finished(self, call: K) -> None:
        """Counts ``call`` out, if it was in."""
        with self.lock:
            self._calls.pop(call, None)
            if not self._calls:
                self._none_left.notify_all()

    def close(self) -> list[V]:
        """Takes no more calls; returns the values of those in flight."""
        with self.lock:
            self.closed = True
            return list(self._calls.values())

    def values(self) -> list[V]:
        with self.lock:
            return list(self._calls.values())

    def wait_until_none_left(self) -> None:
        with self.lock:
            self._none_left.wait_for(lambda: not self._calls)
