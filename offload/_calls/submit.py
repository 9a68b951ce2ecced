"""Submitting a call from the event loop running in the calling thread: asyncio's
(or uvloop's), else trio's."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from .asyncio_call import AsyncioCall
from .body import check_callable
from .delivery import asyncio_inbox_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .body import Submitter

__all__ = ["submit", "submit_checked"]

R = TypeVar("R")

_get_running_loop = asyncio._get_running_loop


def submit(
    submitter: Submitter, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Awaitable[R]:
    """Submits ``fn(*args, **kwargs)`` from the event loop running in this thread.

    On asyncio (and uvloop) the call is submitted now and its Future returned; under
    trio, the returned coroutine submits it when awaited.
    """
    check_callable(fn)
    return submit_checked(submitter, fn, args, kwargs)


def submit_checked(
    submitter: Submitter, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Awaitable[R]:
    """``submit()`` for a function that ``check_callable()`` has passed already."""
    loop = _get_running_loop()
    if loop is None:
        return _submit_without_asyncio(submitter, fn, args, kwargs)
    call: AsyncioCall = AsyncioCall(loop=loop)
    call.home = asyncio_inbox_for(loop)
    call.bind(submitter, fn, args, kwargs)
    submitter._submit(call)
    return call


def _submit_without_asyncio(
    submitter: Submitter, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Awaitable[R]:
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            from .trio_call import submit_on_trio

            return submit_on_trio(submitter, fn, args, kwargs, token)
    raise RuntimeError(
        "offload() needs a running event loop in this thread (asyncio, uvloop or trio); "
        "call it from a coroutine, for example one run by asyncio.run() or anyio.run()"
    )
