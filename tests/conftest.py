"""Shared fixtures: every test runs on each event loop, checks the loop's exception
handler stayed silent, and leaves no thread behind."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

import offload

from .support.loops import ANYIO_BACKENDS, LOOP_FACTORIES, Runner
from .support.polling import wait_until
from .support.pools import assert_invariant
from .support.seams import IdleClock, count_drains

T = TypeVar("T")

# For the tests of offload's pytest plugin, which run pytest in subprocesses.
pytest_plugins = ["pytester"]


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_name: str) -> Iterator[Runner[Any]]:
    """Runs a coroutine to completion on a new loop of the parametrized kind.

    The test fails if the loop's exception handler was called: offload must never make
    the loop report an error behind the caller's back.
    """
    reported: list[dict[str, Any]] = []

    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOP_FACTORIES[loop_name]) as r:
            r.get_loop().set_exception_handler(lambda _loop, context: reported.append(context))
            return r.run(coro)

    yield runner
    assert reported == [], f"the loop's exception handler was called: {reported}"


@pytest.fixture(params=sorted(ANYIO_BACKENDS))
def anyio_run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Runs an async function with ``anyio.run`` on asyncio, asyncio with uvloop, and trio."""
    import anyio

    backend, options = ANYIO_BACKENDS[request.param]

    def runner(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return anyio.run(fn, *args, backend=backend, backend_options=options)

    return runner


@pytest.fixture
def drain_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch of outcomes delivered to a loop, one entry per wake-up
    (the seam ``count_drains``)."""
    return count_drains(monkeypatch)


@pytest.fixture
def gate() -> Iterator[Callable[[], threading.Event]]:
    """Makes events for calls to block on; all are set at teardown, so that a failing
    test releases its blocked calls instead of leaving their threads behind."""
    events: list[threading.Event] = []

    def make() -> threading.Event:
        events.append(threading.Event())
        return events[-1]

    yield make
    for event in events:
        event.set()


@pytest.fixture
def make_pool(gate: Callable[[], threading.Event]) -> Iterator[Callable[..., offload.Pool]]:
    """Makes pools that are shut down at teardown (the thread check then waits for them)."""
    pools: list[offload.Pool] = []

    def make(**kwargs: Any) -> offload.Pool:
        pools.append(offload.Pool(**kwargs))
        return pools[-1]

    yield make
    for p in pools:
        p.shutdown(wait=False)
        assert_invariant(p)


@pytest.fixture
def pool(make_pool: Callable[..., offload.Pool]) -> offload.Pool:
    """A fresh pool named "test"."""
    return make_pool(name="test")


@pytest.fixture
def default_pool(make_pool: Callable[..., offload.Pool]) -> Iterator[offload.Pool]:
    """A fresh default pool for offload(), the previous one restored after the test."""
    previous = offload.set_default_pool(make_pool(name="default"))
    yield offload.default_pool()
    offload.set_default_pool(previous)


@pytest.fixture
def idle_clock(monkeypatch: pytest.MonkeyPatch) -> IdleClock:
    """The idle timeout's clock, for pools made after the fixture: see IdleClock."""
    clock = IdleClock()
    clock.install(monkeypatch)
    return clock


def _none_left_behind(alive: Callable[[], list[Any]], what: str) -> Iterator[None]:
    before = set(alive())
    yield
    wait_until(lambda: set(alive()) <= before, what=f"{what} to exit: {set(alive()) - before}")


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    yield from _none_left_behind(threading.enumerate, "threads")


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Worker processes (ProcessPool's, a Dask cluster's) end with the test that starts them."""
    yield from _none_left_behind(multiprocessing.active_children, "processes")
