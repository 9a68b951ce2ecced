"""Cooperative cancellation inside an offloaded call.

A thread cannot be interrupted safely, so a running call whose awaiter is cancelled runs
on; its awaiter is released at once. A long call can poll ``cancelled()`` or call
``check_cancelled()`` between steps to stop early.
"""

from __future__ import annotations

import asyncio

from .._pool.worker import current_work

__all__ = ["cancelled", "check_cancelled"]


def cancelled() -> bool:
    """Whether the awaiter of the offloaded call running in this thread was cancelled.

    Examples:
        ```python
        def crunch(chunks):
            for chunk in chunks:
                if offload.cancelled():
                    return None
                process(chunk)
        ```

    Returns:
        True once the task awaiting this call has been cancelled (the call's outcome
            will be dropped), False until then.

    Raises:
        RuntimeError: The current thread is not running an offloaded call.
    """
    work = current_work()
    if work is None:
        raise RuntimeError(
            "offload.cancelled() was called outside an offloaded call; call it from a "
            "function run by offload() or Pool.run()"
        )
    return work.cancel_requested


def check_cancelled() -> None:
    """Raises ``asyncio.CancelledError`` if the awaiter of the current call was cancelled.

    ``CancelledError`` is a ``BaseException``, so ``except Exception`` blocks in the
    call let it through; when it ends the call, offload drops it quietly.

    Raises:
        asyncio.CancelledError: The awaiter was cancelled.
        RuntimeError: The current thread is not running an offloaded call.
    """
    if cancelled():
        raise asyncio.CancelledError("the awaiter of this offloaded call was cancelled")
