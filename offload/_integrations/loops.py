"""One line to move a whole program onto offload: the loop's default executor.

``asyncio.to_thread``, ``loop.run_in_executor(None, ...)`` and ``loop.getaddrinfo``
(on asyncio's own loops; uvloop resolves names in libuv's thread pool) all use the
loop's default executor, so making an ``offload.Executor`` on the default pool the
default executor moves them, and the libraries built on them, onto the elastic pool.

The elastic pool lifts the small implicit bound asyncio's own executor puts on every
kind of call (``min(32, cpus + 4)`` threads). For most calls that is the point; for
name lookups it is not: they all go to one resolver, which answers a burst of them no
faster, and fails those it cannot answer in time. So ``install()`` bounds them by
default, process-wide, with one Limiter shared by every loop.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from .._base.checks import count
from .._submitters.default import default_pool
from .._submitters.limiter import Limiter
from .executor import Executor, checked_limits
from .loop_executor import route_default_calls

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from .._pool.pool import Pool

__all__ = ["DEFAULT_DNS_LIMIT", "install", "new_event_loop", "run"]

T = TypeVar("T")

#: Name lookups (``getaddrinfo``, ``getnameinfo``) that ``install()`` lets run at once,
#: process-wide. A resolver answers a burst of lookups no faster for having them all at
#: once, and fails the ones it cannot answer within its timeout as "temporary failure"
#: (docs/guides/switch.md has the measurement behind the number).
DEFAULT_DNS_LIMIT = 4
"""The most name lookups that ``install()`` lets run at once in the process: 4.

It bounds ``loop.getaddrinfo()`` and ``loop.getnameinfo()`` where the loop runs them in its
default executor, as asyncio's does, on every loop installed with the same bound. A resolver answers
a burst of lookups no faster for having them all at once, and fails those it cannot
answer within its timeout; the others wait their turn without a thread.
``install(dns_limit=None)`` lifts the bound.
"""

_shared_lock = threading.Lock()
# The DNS Limiter of each pool and bound, shared by every loop install() sets up, for as
# long as an executor holds it (or a call runs through it). Not held here: a Limiter
# holds its pool, so a cache that held them would keep every pool install() ever used.
# One made afresh after the last is gone loses no bound: no call runs under that one.
_dns_limiters: weakref.WeakValueDictionary[tuple[Pool, int], Limiter] = weakref.WeakValueDictionary()


def install(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    dns_limit: int | None = DEFAULT_DNS_LIMIT,
    limits: Mapping[Callable[..., object], int | Limiter] | None = None,
) -> Executor:
    """Makes offload's default pool the default executor of ``loop`` (the running loop).

    Examples:
        ```python
        async def main():
            offload.install()
            await asyncio.to_thread(blocking_io)  # now runs on offload's pool
        ```

    The executor shares the pool ``offload()`` uses. When the loop shuts its default
    executor down (``asyncio.run`` does), it waits for the calls made through the
    executor and leaves the pool open for other loops.

    Args:
        loop: The loop; by default the running one.
        dns_limit: The most name lookups (``loop.getaddrinfo()``, ``loop.getnameinfo()``)
            running at once in the process, on every loop installed with the same
            bound; None lifts the bound.
        limits: More bounds, per function called through the executor: the most calls
            of it running at once, an int (for this loop alone) or an ``offload.Limiter``
            (shared by whoever holds it; on the default pool). A call counts however it
            is wrapped in ``functools.partial``, so ``asyncio.to_thread(fn)`` counts
            against ``fn``'s bound as ``run_in_executor(None, fn)`` does. They take
            precedence over ``dns_limit`` for the functions they name.

    Returns:
        The executor installed.

    Raises:
        RuntimeError: No loop is given and none is running in this thread.
        TypeError, ValueError: A bound is not a positive int (or a Limiter, in
            ``limits``).
    """
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "offload.install() needs a running event loop; call it from async code, "
                "or pass loop=, or make the loop with offload.new_event_loop()"
            ) from None
    pool = default_pool()
    executor = Executor(pool=pool, limits={**_dns_limits(loop, pool, dns_limit), **checked_limits(limits)})
    loop.set_default_executor(executor)
    route_default_calls(loop, executor)
    return executor


def _dns_limits(
    loop: asyncio.AbstractEventLoop, pool: Pool, dns_limit: int | None
) -> dict[Callable[..., object], Limiter]:
    """The functions asyncio's loops resolve names with, bound by one shared Limiter."""
    dns_limit = count(dns_limit, "dns_limit", none=True)
    if dns_limit is None:
        return {}
    with _shared_lock:
        limiter = _dns_limiters.get((pool, dns_limit))
        if limiter is None:
            limiter = _dns_limiters[pool, dns_limit] = Limiter(dns_limit, pool=pool)
    lookups: list[Callable[..., object]] = [socket.getaddrinfo, socket.getnameinfo]
    # In debug mode, asyncio's loops look names up through this method instead.
    debug_lookup = getattr(loop, "_getaddrinfo_debug", None)
    if debug_lookup is not None:
        lookups.append(debug_lookup)
    return dict.fromkeys(lookups, limiter)


def new_event_loop(*, use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop whose default executor is offload's: a loop factory.

    Examples:
        ```python
        asyncio.run(main(), loop_factory=offload.new_event_loop)  # Python 3.12+
        with asyncio.Runner(loop_factory=offload.new_event_loop) as runner: ...
        ```

    Args:
        use_uvloop: True for a uvloop loop, False for asyncio's own, None for uvloop if
            it is installed.

    Returns:
        A new loop, not running and not set as the current loop, with ``install()``
            done on it (name lookups bounded by ``DEFAULT_DNS_LIMIT``).

    Raises:
        ImportError: ``use_uvloop=True`` and uvloop is not installed.
    """
    loop = _new_loop(use_uvloop)
    install(loop)
    return loop


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None, debug: bool | None = None) -> T:
    """Runs ``main`` as ``asyncio.run`` does, on a loop from ``new_event_loop()``.

    Examples:
        ```python
        offload.run(main())  # uvloop if installed, offload as the default executor
        ```

    Args:
        main: The coroutine to run.
        use_uvloop: As for ``new_event_loop()``.
        debug: As for ``asyncio.run()``.

    Returns:
        What ``main`` returns.

    Raises:
        RuntimeError: An event loop is already running in this thread.
        ImportError: ``use_uvloop=True`` and uvloop is not installed.
    """
    factory: Callable[[], asyncio.AbstractEventLoop] = functools.partial(
        new_event_loop, use_uvloop=use_uvloop
    )
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


def _new_loop(use_uvloop: bool | None) -> asyncio.AbstractEventLoop:
    """uvloop's loop if asked for, or by default where uvloop is installed; else asyncio's."""
    if use_uvloop is False:
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if use_uvloop:
            raise ImportError("use_uvloop=True needs uvloop: pip install 'offload[uvloop]'") from None
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
