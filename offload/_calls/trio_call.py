"""Offloaded calls awaited from trio (directly, or through anyio's trio backend).

Imported only once a call is made under trio, so trio stays an optional dependency.
The awaiting task parks in ``wait_task_rescheduled``; results come back through the
run's inbox, so that many calls finishing together wake trio once (``run_sync_soon``).
Cancellation follows trio's rules: the abort callback takes a queued call out of the
pool (it never runs) and releases the task of a running one at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from .body import CallBody
from .delivery import TrioInbox, trio_inbox_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from .body import Submitter

__all__ = ["TrioCall", "submit_on_trio"]

R = TypeVar("R")


class TrioCall(CallBody):
    __slots__ = (*CallBody.BODY_SLOTS, "_task")

    home: TrioInbox
    _task: trio.lowlevel.Task

    def settle(self) -> None:
        # On trio's thread, where abort() set cancel_requested: no lock needed to read it.
        if self.cancel_requested:
            self.report_lost_error()
        elif self._error is None:
            trio.lowlevel.reschedule(self._task, outcome.Value(self._value))
        else:
            trio.lowlevel.reschedule(self._task, outcome.Error(self._error))


async def submit_on_trio(
    submitter: Submitter,
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    token: trio.lowlevel.TrioToken,
) -> R:
    await trio.lowlevel.checkpoint_if_cancelled()
    call = TrioCall()
    call.home = trio_inbox_for(token)
    call._task = trio.lowlevel.current_task()
    call.bind(submitter, fn, args, kwargs)
    submitter._submit(call)

    def abort(_: object) -> trio.lowlevel.Abort:
        submitter._cancel(call)  # sets call.cancel_requested
        return trio.lowlevel.Abort.SUCCEEDED

    result: R = await trio.lowlevel.wait_task_rescheduled(abort)
    return result
