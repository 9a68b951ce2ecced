"""Helpers for the tests: the loops to run on, polling with a deadline, the invariant,
the examples, an idle timeout that passes on cue, and child interpreters."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import anyio
import pytest

import offload
from offload import _delivery, _pool

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
AnyioRun = Callable[..., Any]  # the anyio_run fixture: runs an async function on a backend


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Polls ``condition`` until it holds; fails the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls ``condition`` on the running loop (asyncio or trio, through anyio) with a
    deadline (no helper thread: trio's own thread cache would keep one alive for 10 s
    after the test)."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)


async def windows_closed(pool: offload.Pool) -> None:
    """Waits, on the running loop, until no thread of ``pool`` is returning to a loop
    (each has taken a call, become the idle thread, or left: the pool's point 4) and
    none is starting (the last of a chain may arrive after the calls it grew for)."""
    await until(lambda: pool.stats().returning + pool.stats().starting == 0)


async def awaited(awaitable: Awaitable[T]) -> T:
    """Awaits ``awaitable`` in a coroutine, for ``asyncio.ensure_future()`` to make a task of."""
    return await awaitable


async def gather_in_one_wakeup(calls: list[Awaitable[T]], drain_sizes: list[int]) -> list[T]:
    """Gathers ``calls`` after holding the loop's thread until all their outcomes wait in
    its inbox, as when the loop is busy while they finish; checks that one wake-up of
    the loop delivered them all (``drain_sizes`` is the fixture)."""
    inbox = _delivery.asyncio_inbox_for(asyncio.get_running_loop())
    wait_until(lambda: len(inbox._items) == len(calls), what="all outcomes in the inbox")
    results = await asyncio.gather(*calls)
    assert drain_sizes == [len(calls)]
    return results


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


ANYIO_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {"asyncio": ("asyncio", {}), "trio": ("trio", {})}
if "uvloop" in LOOP_FACTORIES:
    ANYIO_BACKENDS["asyncio+uvloop"] = ("asyncio", {"use_uvloop": True})


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


EXAMPLES = Path(__file__).parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        monkeypatch.setattr(_pool, "_monotonic", lambda: clock.now)

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
