"""Helpers for the tests: the loops to run on, polling with a deadline, the invariant,
an idle timeout that passes on cue, and child interpreters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

import offload
from offload import _pool

T = TypeVar("T")

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop has no wheel for free-threaded builds
    pass
else:
    LOOP_FACTORIES["uvloop"] = uvloop.new_event_loop

Runner = Callable[[Coroutine[Any, Any, T]], T]
Gate = Callable[[], threading.Event]
MakePool = Callable[..., offload.Pool]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Polls ``condition`` until it holds; fails the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


def assert_invariant(pool: offload.Pool) -> offload.PoolStats:
    s = pool.stats()
    assert s.threads == s.busy + s.idle + s.starting, s
    assert s.idle + s.starting <= 1, s
    return s


ANYIO_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {"asyncio": ("asyncio", {}), "trio": ("trio", {})}
if "uvloop" in LOOP_FACTORIES:
    ANYIO_BACKENDS["asyncio+uvloop"] = ("asyncio", {"use_uvloop": True})


def run_script(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` in a child interpreter, for what a test process must not do itself."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class IdleClock:
    """The clock of the idle timeout, moved by the test instead of by time passing.

    ``install()`` gives every pool thread made afterwards a wake lock that waits on this
    clock: an idle thread times out when ``advance()`` takes the clock past its
    ``idle_timeout`` from when its wait began, at once and never before, so a test lets
    an hour pass in a step. ``waiting`` tells when the idle thread has begun to wait (it
    is counted idle a little before, while it delivers its last outcome).
    """

    # How often a timed wait reads the clock; a call handed over ends the wait at once.
    POLL = 0.001

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0.0
        self._waiting = 0

    @property
    def now(self) -> float:
        with self._lock:
            return self._now

    @property
    def waiting(self) -> int:
        """Threads in a timed wait on this clock now."""
        with self._lock:
            return self._waiting

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        class ClockedWorker(_pool._Worker):
            def __init__(self, pool: offload.Pool, base_name: str) -> None:
                super().__init__(pool, base_name)
                self.wake = _ClockedWake(self.wake, clock)  # type: ignore[assignment]

        monkeypatch.setattr(_pool, "_Worker", ClockedWorker)

    def _wait(self, lock: threading.Lock, timeout: float) -> bool:
        with self._lock:
            deadline = self._now + timeout
            self._waiting += 1
        try:
            while not lock.acquire(timeout=self.POLL):
                if self.now >= deadline:
                    return False
            return True
        finally:
            with self._lock:
                self._waiting -= 1


class _ClockedWake:
    """A worker's wake lock whose timed waits read an IdleClock."""

    def __init__(self, lock: threading.Lock, clock: IdleClock) -> None:
        self._lock = lock
        self._clock = clock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout < 0:
            return self._lock.acquire()
        return self._clock._wait(self._lock, timeout)

    def release(self) -> None:
        self._lock.release()
