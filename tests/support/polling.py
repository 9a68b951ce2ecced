"""Waiting for a condition with a deadline, never sleep-and-hope: from a plain thread
(``wait_until``) or on the running loop (``until``, ``windows_closed``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import pytest

import offload

T = TypeVar("T")


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
