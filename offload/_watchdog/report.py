"""What the watchdog reports of a block: ``BlockReport``, and the stacks it is made of."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import traceback
from dataclasses import dataclass

__all__ = ["BlockReport", "Stack", "capture_stack"]

Stack = tuple[traceback.FrameSummary, ...]


@dataclass(frozen=True, slots=True)
class BlockReport:
    """One block of an event loop: how long it lasted, and where its thread was.

    ``str(report)`` is ``report.format()``: a readable report that names the line to run
    in a thread with ``await offload(...)``.
    """

    duration: float
    """Seconds the loop went without turning (``watch_loop`` says how precisely)."""
    stack: Stack
    """The loop thread's stack when the watchdog first saw the block, outermost first."""
    end_stack: Stack | None
    """Its stack the last time the watchdog saw the block, if different from ``stack``."""
    started_at: float
    """When the block began, in seconds since the epoch (as ``time.time()``)."""

    @property
    def where(self) -> traceback.FrameSummary | None:
        """The innermost frame of ``stack`` in your own code: the call to offload.

        Frames of the standard library, of installed packages and of offload itself are
        passed over; if the whole stack is theirs, this is its innermost frame.
        """
        yours = _your_frames(self.stack)
        if yours:
            return self.stack[yours[-1]]
        return self.stack[-1] if self.stack else None

    def format(self) -> str:
        """The report as text: the line to offload, then the stacks from your code on."""
        lines = [f"The event loop was blocked for {self.duration * 1000:.0f} ms at {_locate(self.where)}"]
        lines += _format_stack("Stack when first seen", self.stack)
        if self.end_stack is not None:
            lines += _format_stack("Stack when last seen", self.end_stack)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _locate(frame: traceback.FrameSummary | None) -> str:
    if frame is None:
        return "an unknown place"
    return (
        f"{frame.filename}:{frame.lineno}, in {frame.name}\n    {frame.line}\n"
        "Run that call in a thread: await offload(fn, *args)"
    )


def _format_stack(title: str, stack: Stack) -> list[str]:
    frames = traceback.StackSummary.from_list(list(_callback_part(stack))).format()
    return [f"{title} (most recent call last):", "".join(frames).rstrip("\n")]


def _callback_part(stack: Stack) -> Stack:
    """The stack from your first frame in the loop's callback on.

    The frames around the callback (pytest's, the script's ``asyncio.run()``, the loop's
    own) say nothing about the block; the report's fields keep the whole stack.
    """
    yours = _your_frames(stack)
    if not yours:
        return stack
    loop_frames = [i for i in range(yours[-1]) if stack[i].filename.startswith(_ASYNCIO_FOLDER)]
    last_loop_frame = loop_frames[-1] if loop_frames else -1
    return stack[next(i for i in yours if i > last_loop_frame) :]


def _your_frames(stack: Stack) -> list[int]:
    prefixes = _library_prefixes()
    return [i for i, frame in enumerate(stack) if not frame.filename.startswith(prefixes)]


_ASYNCIO_FOLDER = os.path.join(os.path.dirname(asyncio.__file__), "")


@functools.cache
def _library_prefixes() -> tuple[str, ...]:
    import sysconfig  # only once a block is reported: most programs never need it

    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    folders.add(os.path.dirname(__file__))
    return ("<frozen ", *(os.path.join(folder, "") for folder in folders))


def capture_stack(thread_id: int) -> Stack:
    """The stack of thread ``thread_id`` now, outermost frame first.

    Its source lines are read later, when a report is formatted: read here, the first time
    from files that linecache has not seen, they can take so long on a loaded machine that
    the block ends before the stack is taken.
    """
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return ()
    innermost_first = traceback.StackSummary.extract(traceback.walk_stack(frame), lookup_lines=False)
    return tuple(reversed(innermost_first))
