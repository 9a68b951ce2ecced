"""``offload()`` and the process-wide default pool it uses."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from .._base.errors import PoolClosedError
from .._calls.submit import submit
from .._pool.pool import Pool

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["default_pool", "offload", "set_default_pool"]

P = ParamSpec("P")
R = TypeVar("R")

_default = Pool()
_default_lock = threading.Lock()


def offload(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
    """Runs ``fn(*args, **kwargs)`` in a thread of the default pool; await the result.

    Examples:
        ```python
        data = await offload(path.read_bytes)
        rows = await offload(cursor.execute, "select * from t where id = ?", (42,))
        ```

    The call is submitted at once (as ``loop.run_in_executor`` does). The caller's
    ``contextvars`` context is copied into it. Its return value, or its exception with
    the traceback from the thread, reaches the awaiter; so do ``KeyboardInterrupt`` and
    ``SystemExit``, which never kill the pool. If the awaiting task is cancelled
    (including by ``asyncio.timeout()`` or ``wait_for()``), a call still queued never
    runs, and a running one releases the awaiter at once: the thread finishes it,
    ``offload.cancelled()`` turns True inside it, its result is dropped, and its
    exception, if any, is logged on the ``offload`` logger.

    Thread safety: call it from a coroutine; it needs the running loop of its thread.
    After ``os.fork()``, the child's default pool is empty and usable.

    Args:
        fn: The blocking function: a plain callable, not a coroutine function.
        *args: Positional arguments for ``fn``.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        An awaitable (an ``asyncio.Future``, so ``asyncio.gather()`` takes it as it is)
            that gives what ``fn`` returns, or raises what it raises.

    Raises:
        RuntimeError: No asyncio event loop is running in this thread.
        TypeError: ``fn`` is not callable, or is a coroutine function.
        PoolClosedError: The default pool has been shut down.
        ThreadStartError: Raised by the awaitable: the pool needed a thread for the call,
            the operating system refused to start one, and no thread of the pool was
            left to run it.
    """
    return submit(_default, fn, args, kwargs)


def default_pool() -> Pool:
    """The pool ``offload()`` submits to, for its stats, its bound or its idle timeout.

    Examples:
        ```python
        print(offload.default_pool().stats())
        ```

    Returns:
        The default pool of the moment (see ``set_default_pool()``).
    """
    return _default


def set_default_pool(pool: Pool) -> Pool:
    """Makes ``pool`` the one ``offload()`` submits to; returns the previous one.

    The previous pool is not shut down: its running calls finish as usual, and the caller
    decides when to shut it down.

    Examples:
        ```python
        old = offload.set_default_pool(offload.Pool(max_threads=32, idle_timeout=60))
        old.shutdown(wait=False)
        ```

    Args:
        pool: The new default pool; open, not shut down.

    Returns:
        The previous default pool, still open.

    Raises:
        TypeError: ``pool`` is not an offload.Pool.
        PoolClosedError: ``pool`` has been shut down.
    """
    global _default
    if not isinstance(pool, Pool):
        raise TypeError(f"set_default_pool() needs an offload.Pool, not {type(pool).__name__}")
    if pool.closed:
        raise PoolClosedError(f"set_default_pool() needs an open pool; {pool!r} is shut down: make a new one")
    with _default_lock:
        previous, _default = _default, pool
    return previous
