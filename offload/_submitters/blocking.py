"""``@offload.blocking``: a synchronous function whose calls run in the pool."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, ParamSpec, TypeVar, overload

from .._calls.body import check_callable
from .._calls.submit import submit_checked
from .._pool.pool import Pool
from .default import default_pool
from .limiter import Limiter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["blocking"]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def blocking(fn: Callable[P, R], /) -> Callable[P, Awaitable[R]]: ...


@overload
def blocking(runner: Pool | Limiter, /) -> Callable[[Callable[P, R]], Callable[P, Awaitable[R]]]: ...


def blocking(
    target: Callable[P, R] | Pool | Limiter, /
) -> Callable[P, Awaitable[R]] | Callable[[Callable[P, R]], Callable[P, Awaitable[R]]]:
    """Marks a function as blocking: calling it returns an awaitable that runs it in a thread.

    Examples:
        ```python
        @offload.blocking
        def read_config(path: str) -> dict: ...

        db = offload.Limiter(10)

        @offload.blocking(db)
        def query(sql: str) -> list[tuple]: ...

        config = await read_config("app.toml")
        rows = await query("select 1")
        ```

    The signature is kept for type checkers, with the return type wrapped in
    ``Awaitable``; the plain function stays reachable as ``__wrapped__``. Without a pool
    or limiter, each call goes to the default pool of the moment (``offload()``'s).

    Args:
        target: The function to mark; or a ``Pool`` or ``Limiter`` for its calls to go
            through, and then the result decorates the function.

    Returns:
        The function's awaitable twin; given a pool or a limiter, a decorator that makes
            one.

    Raises:
        TypeError: The function is not callable, or is a coroutine function.
    """
    if isinstance(target, Pool | Limiter):
        return functools.partial(_wrap, runner=target)
    return _wrap(target, runner=None)


def _wrap(fn: Callable[P, R], runner: Pool | Limiter | None) -> Callable[P, Awaitable[R]]:
    check_callable(fn)  # once, here, rather than at every call

    @functools.wraps(fn)
    def offloaded(*args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return submit_checked(runner or default_pool(), fn, args, kwargs)

    return offloaded
