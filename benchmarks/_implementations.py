"""The implementations compared: offload and the ways asyncio programs offload today.

Each one is opened inside a running loop and yields a ``call(fn, *args)`` that returns
an awaitable, the way a user would write it with that library.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import functools
import queue
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import offload

__all__ = [
    "BASELINE",
    "CPU_PEERS",
    "FLOOR",
    "IMPLEMENTATIONS",
    "RAW_THREAD",
    "THREAD_PER_CALL",
    "Call",
    "open_implementation",
]

Call = Callable[..., Awaitable[Any]]

BASELINE = "asyncio.to_thread"
FLOOR = "floor"
IMPLEMENTATIONS = (
    "offload",
    "offload.install()",
    BASELINE,
    "run_in_executor(None)",
    "ThreadPoolExecutor(64)",
    "anyio.to_thread",
    FLOOR,
)

#: Threads of the floor, started before it is measured and kept: as many as the
#: ThreadPoolExecutor measured beside it.
FLOOR_THREADS = 64

#: A new thread for every call, started the cheapest way there is and the threading
#: module's way: what the thread_start scenario measures offload's growth against.
RAW_THREAD = "_thread.start_new_thread"
THREAD_START = "Thread.start()"
THREAD_PER_CALL = (RAW_THREAD, THREAD_START)

#: What the cpu_bound scenario measures offload's threads against: the same calls, awaited
#: the same way, in subinterpreters and in worker processes, each pool as many as CPUs.
#: InterpreterPool needs Python 3.14, and is left out of the plan before.
INTERPRETER_POOL = "InterpreterPool"
PROCESS_POOL = "ProcessPool"
CPU_PEERS = (INTERPRETER_POOL, PROCESS_POOL) if sys.version_info >= (3, 14) else (PROCESS_POOL,)


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
        # The one-line switch itself, asyncio.to_thread after install(), on a fresh
        # default pool.
        async with offload.Pool(name="bench") as pool:
            previous = offload.set_default_pool(pool)
            try:
                offload.install()
                yield asyncio.to_thread
            finally:
                offload.set_default_pool(previous)
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
    elif name == FLOOR:
        async with _floor(loop) as call:
            yield call
    elif name == RAW_THREAD:
        yield functools.partial(_thread_per_call, loop, _thread.start_new_thread)
    elif name == THREAD_START:
        yield functools.partial(_thread_per_call, loop, _start_thread)
    elif name == INTERPRETER_POOL:
        async with offload.InterpreterPool() as interpreters:
            yield interpreters.run
    elif name == PROCESS_POOL:
        async with offload.ProcessPool() as processes:
            yield processes.run
    else:
        known = ", ".join((*IMPLEMENTATIONS, *THREAD_PER_CALL, *CPU_PEERS))
        raise ValueError(f"unknown implementation {name!r}; choose from {known}")


@contextlib.asynccontextmanager
async def _floor(loop: asyncio.AbstractEventLoop) -> AsyncIterator[Call]:
    """The least bookkeeping a hand-off can have on this interpreter, to read the others'
    figures against: threads started beforehand and kept, a ``SimpleQueue`` in, one
    ``call_soon_threadsafe()`` per outcome out. Not a pool anyone should use: it starts
    all its threads up front, holds them for ever, and knows nothing of cancellation,
    limits or exit."""
    jobs: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
    jobs = queue.SimpleQueue()

    def serve() -> None:
        while (job := jobs.get()) is not None:
            _run_and_settle(loop, *job)

    threads = [threading.Thread(target=serve, name="floor", daemon=True) for _ in range(FLOOR_THREADS)]
    for thread in threads:
        thread.start()

    def call(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future = loop.create_future()
        jobs.put((future, fn, args))
        return future

    try:
        yield call
    finally:
        for _ in threads:
            jobs.put(None)
        await asyncio.to_thread(_join, threads)


def _thread_per_call(
    loop: asyncio.AbstractEventLoop,
    start: Callable[[Callable[[], None], tuple[()]], object],
    fn: Callable[..., Any],
    *args: Any,
) -> asyncio.Future[Any]:
    future = loop.create_future()
    start(functools.partial(_run_and_settle, loop, future, fn, args), ())
    return future


def _start_thread(target: Callable[[], None], args: tuple[()]) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def _run_and_settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """Runs ``fn(*args)`` here and settles ``future`` with its outcome on ``loop``."""
    try:
        result = fn(*args)
    except BaseException as exc:
        loop.call_soon_threadsafe(_settle, future, None, exc)
    else:
        loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
