"""A call awaited from asyncio (or uvloop): at once the ``asyncio.Future`` the caller
awaits and the Work the pool runs, so a call costs the event loop one object. Its
``cancel()`` (which asyncio calls when the awaiting task is cancelled, by
``asyncio.timeout()``, ``wait_for()`` or ``gather()``) tells the submitter, so a queued
call never runs and a running one sees ``offload.cancelled()``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from .body import CallBody

if TYPE_CHECKING:
    import concurrent.futures

    from .delivery import AsyncioInbox

__all__ = ["AsyncioCall"]


# Guards AsyncioCall._nested: taken only by calls back into the loop and by cancel().
_nested_lock = threading.Lock()


class AsyncioCall(CallBody, asyncio.Future[Any]):
    """One offloaded call: the Future its awaiter waits on, and the pool's Work."""

    __slots__ = (*CallBody.BODY_SLOTS, "_nested")

    home: AsyncioInbox
    _nested: concurrent.futures.Future[Any]  # unset until the call awaits the loop

    # --- the awaiter's side, on the loop's thread ---

    def cancel(self, msg: Any | None = None) -> bool:
        if self.done():
            return False
        if self._submitter._cancel(self):
            self.dropped()
        with _nested_lock:
            nested = getattr(self, "_nested", None)
        if nested is not None:
            nested.cancel()
        return super().cancel(msg=msg)

    def dropped(self) -> None:
        """Told that the call, cancelled before it started, will never run."""

    def settle(self) -> None:
        if self.done():  # cancelled while its outcome was on the way
            self.report_lost_error()
        elif self._error is None:
            self.set_result(self._value)
        elif isinstance(self._error, asyncio.CancelledError):  # dropped by shutdown, or raised
            # With its message, by which anyio tells its own cancellations from others.
            asyncio.Future.cancel(self, *self._error.args[:1])
        else:
            self.set_exception(self._error)

    # --- the pool's side, on a pool thread ---

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the awaiter runs on (for calls back into it)."""
        return self.home.loop

    def follow(self, nested: concurrent.futures.Future[Any]) -> None:
        """Cancels ``nested``, a call back into the loop, if this call is cancelled."""
        with _nested_lock:
            self._nested = nested
            cancelled = self.cancel_requested
        if cancelled:  # cancel() came first, and saw no nested call to cancel
            nested.cancel()
