"""Pools under test: the invariant, a blocker that holds a thread, a probe that counts
calls running at once."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import offload

from .polling import wait_until

Gate = Callable[[], threading.Event]
MakePool = Callable[..., offload.Pool]


def start_blocker(pool: offload.Pool, release: threading.Event) -> Awaitable[bool]:
    """Submits ``release.wait`` to ``pool``, an idle pool, and returns once a thread runs it."""
    blocker = pool.run(release.wait)
    wait_until(lambda: pool.stats().busy == 1, what="the blocker to start")
    return blocker


def assert_invariant(pool: offload.Pool) -> offload.PoolStats:
    s = pool.stats()
    assert s.threads == s.busy + s.returning + s.idle + s.starting, s
    assert s.idle + s.starting <= 1, s
    return s


class ConcurrencyProbe:
    """A task that counts how many copies of it run at once, then blocks on ``release``.

    ``inside`` is released once per task that has started, so a test can wait for them.
    """

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.inside = threading.Semaphore(0)
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()

    def task(self) -> None:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)
        self.inside.release()
        self.release.wait()
        with self._lock:
            self._now -= 1

    def wait_inside(self, count: int) -> None:
        for _ in range(count):
            assert self.inside.acquire(timeout=10), "a task did not start"


class CancelWatch:
    """A call that starts, holds its thread until ``release`` is set, then records
    whether its awaiter was cancelled (``offload.cancelled()``) in ``seen``."""

    def __init__(self, gate: Gate) -> None:
        self.started, self.release = gate(), gate()
        self.seen: list[bool] = []

    def call(self) -> None:
        self.started.set()
        self.release.wait()
        self.seen.append(offload.cancelled())
