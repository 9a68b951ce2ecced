"""The implementations compared: offload and the ways asyncio programs offload today.

Each one is opened inside a running loop and yields a ``call(fn, *args)`` that returns
an awaitable, the way a user would write it with that library.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import offload

__all__ = ["BASELINE", "IMPLEMENTATIONS", "Call", "open_implementation"]

Call = Callable[..., Awaitable[Any]]

BASELINE = "asyncio.to_thread"
IMPLEMENTATIONS = (
    "offload",
    "offload.install()",
    BASELINE,
    "run_in_executor(None)",
    "ThreadPoolExecutor(64)",
    "anyio.to_thread",
)


@contextlib.asynccontextmanager
async def open_implementation(name: str) -> AsyncIterator[Call]:
    """Yields ``call(fn, *args)`` for the implementation ``name`` on the running loop.

    Each measurement opens its own: a fresh offload pool, a fresh executor, and (since
    every measurement runs on a new loop) a fresh default executor for asyncio's own.
    """
    loop = asyncio.get_running_loop()
    if name == "offload":
        async with offload.Pool(name="bench") as pool:
            yield pool.run
    elif name == "offload.install()":
        # The one-line switch: asyncio.to_thread on offload's Executor, on a fresh pool.
        with offload.Executor(thread_name_prefix="bench") as executor:
            loop.set_default_executor(executor)
            yield asyncio.to_thread
    elif name == BASELINE:
        yield asyncio.to_thread
    elif name == "run_in_executor(None)":
        yield functools.partial(loop.run_in_executor, None)
    elif name == "ThreadPoolExecutor(64)":
        with ThreadPoolExecutor(max_workers=64) as executor:
            yield functools.partial(loop.run_in_executor, executor)
    elif name == "anyio.to_thread":
        import anyio.to_thread

        yield anyio.to_thread.run_sync
    else:
        raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(IMPLEMENTATIONS)}")
