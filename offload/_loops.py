"""One line to move a whole program onto offload: the loop's default executor.

``asyncio.to_thread``, ``loop.run_in_executor(None, ...)`` and ``loop.getaddrinfo``
(on asyncio's own loops; uvloop resolves names in libuv's thread pool) all use the
loop's default executor, so making an ``offload.Executor`` on the default pool the
default executor moves them, and the libraries built on them, onto the elastic pool.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, TypeVar

from ._executor import Executor
from ._offload import default_pool

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["install", "new_event_loop", "run"]

T = TypeVar("T")


def install(loop: asyncio.AbstractEventLoop | None = None) -> Executor:
    """Makes offload's default pool the default executor of ``loop`` (the running loop).

    Example::

        async def main():
            offload.install()
            await asyncio.to_thread(blocking_io)  # now runs on offload's pool

    The executor shares the pool ``offload()`` uses. When the loop shuts its default
    executor down (``asyncio.run`` does), it waits for the calls made through the
    executor and leaves the pool open for other loops.

    Returns:
        The executor installed.

    Raises:
        RuntimeError: No loop is given and none is running in this thread.
    """
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "offload.install() needs a running event loop; call it from async code, "
                "or pass loop=, or make the loop with offload.new_event_loop()"
            ) from None
    executor = Executor(pool=default_pool())
    loop.set_default_executor(executor)
    return executor


def new_event_loop(*, use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop whose default executor is offload's: a loop factory.

    Example::

        asyncio.run(main(), loop_factory=offload.new_event_loop)  # Python 3.12+
        with asyncio.Runner(loop_factory=offload.new_event_loop) as runner: ...

    Args:
        use_uvloop: True for a uvloop loop, False for asyncio's own, None for uvloop if
            it is installed.

    Raises:
        ImportError: ``use_uvloop=True`` and uvloop is not installed.
    """
    loop = _new_loop(use_uvloop)
    install(loop)
    return loop


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None, debug: bool | None = None) -> T:
    """Runs ``main`` as ``asyncio.run`` does, on a loop from ``new_event_loop()``.

    Example::

        offload.run(main())  # uvloop if installed, offload as the default executor

    Args:
        main: The coroutine to run.
        use_uvloop: As for ``new_event_loop()``.
        debug: As for ``asyncio.run()``.
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
