"""Helpers for the tests: the loops to run on, polling with a deadline, the invariant,
the examples."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import anyio
import pytest

import offload
from offload import _delivery

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


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls ``condition`` on the running loop (asyncio or trio, through anyio) with a
    deadline (no helper thread: trio's own thread cache would keep one alive for 10 s
    after the test)."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.001)


async def gather_in_one_wakeup(calls: list[Awaitable[T]], drain_sizes: list[int]) -> list[T]:
    """Gathers ``calls`` after holding the loop's thread until all their outcomes wait in
    its inbox, as when the loop is busy while they finish; checks that one wake-up of
    the loop delivered them all (``drain_sizes`` is the fixture)."""
    inbox = _delivery.asyncio_inbox_for(asyncio.get_running_loop())
    wait_until(lambda: len(inbox._items) == len(calls), what="all outcomes in the inbox")
    results = await asyncio.gather(*calls)
    assert drain_sizes == [len(calls)]
    return results


def assert_invariant(pool: offload.Pool) -> offload.PoolStats:
    s = pool.stats()
    assert s.threads == s.busy + s.idle + s.starting, s
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
