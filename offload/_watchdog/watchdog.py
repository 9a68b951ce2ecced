"""A watchdog that names the call blocking an asyncio event loop.

An event loop is a single-threaded VM: while one callback runs, nothing else does. From
another thread, a watchdog can see that the VM has stopped turning and look at what its
thread is doing at that moment. asyncio's debug mode only names the slow callback, not
the line in it, and patch lists (blockbuster's) know only the calls they patch.

How it works, with ``period = threshold / 4``:

1. The heartbeat. ``start()`` posts the first probe; then every ``period`` the watchdog
   thread posts one with ``call_soon_threadsafe``, unless the last one is still
   unanswered; when the loop runs it, it writes the time into ``_last_beat``. That is all
   the loop's thread pays while nothing blocks: one callback, 4 / threshold times a
   second. Any loop can do it, uvloop included; no loop internals are patched. The probe
   comes from outside rather than from a ``call_later`` timer, because a pending timer
   makes each of the loop's waits for I/O a timed wait, which slows every turn of a
   loop that waits for I/O often (docs/guides/watchdog.md gives the figures).
2. While the last probe is unanswered, the watchdog thread sleeps until the last answer
   is ``threshold`` old. Then, if the loop runs, it is blocked: the thread takes the
   loop thread's stack (``sys._current_frames()``), then checks, under the lock, that
   no answer came meanwhile, so that the stack was taken during the block.
3. While the block lasts, the thread posts no probe and looks every ``period``: it
   takes the stack again, and keeps it as the latest if the loop has still not answered
   once it is taken.
4. The answer, or ``stop()``, moves ``_last_beat`` on: that is when the block ended, and
   the watchdog thread sends one BlockReport for the whole block.

Locking: ``LoopWatchdog._lock`` guards ``_last_beat`` and ``_probe_pending``, the state
the loop's thread and the watchdog's share. Nobody waits while holding it, and stacks
are taken outside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from typing import TYPE_CHECKING, TypeVar

from .._base.log import logger
from .report import BlockReport, Stack, capture_stack

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["LoopWatchdog", "milliseconds", "run_watched", "watch_loop"]

T = TypeVar("T")


# threading refuses a longer timeout (OverflowError), where asyncio's delays take any
# number. A wait cut short only makes the watchdog look again: it compares times, and
# reports nothing before the threshold has passed.
_LONGEST_WAIT = threading.TIMEOUT_MAX


def _log_report(report: BlockReport) -> None:
    logger.warning("%s", report)


class _Block:
    """A block in progress, as the watchdog thread has seen it."""

    __slots__ = ("latest", "since", "stack")

    def __init__(self, since: float, stack: Stack) -> None:
        self.since = since  # the loop's last answer before the block (time.monotonic())
        self.stack = stack
        self.latest = stack


class LoopWatchdog:
    """Watches an asyncio event loop from a thread; made by ``watch_loop()``.

    Use it as a context manager (``with`` or ``async with``), or call ``start()`` and
    ``stop()`` yourself, both from the loop's thread.
    """

    def __init__(self, threshold: float, on_block: Callable[[BlockReport], object] | None) -> None:
        self._threshold = _check_threshold(threshold)
        self._period = self._threshold / 4
        self._on_block = _log_report if on_block is None else _check_on_block(on_block)
        self._lock = threading.Lock()
        self._last_beat = 0.0  # time.monotonic() of the loop's last turn
        self._probe_pending = False  # a probe is posted and the loop has not run it yet
        self._stopping = threading.Event()
        self._watching = threading.Event()  # set by start() once its thread runs
        self._thread: threading.Thread | None = None
        # Set by start(), on the loop's thread.
        self._loop: asyncio.AbstractEventLoop
        self._loop_thread_id: int

    def start(self) -> None:
        """Starts watching the running loop of this thread.

        Raises:
            RuntimeError: No event loop is running in this thread, or this watchdog was
                started before (make a new one with ``watch_loop()``).
        """
        loop = asyncio._get_running_loop()
        if loop is None:
            raise RuntimeError(
                "watch_loop() needs a running asyncio event loop in this thread; start it "
                "from a coroutine, for example at the top of main()"
            )
        if self._thread is not None:
            raise RuntimeError("this watchdog was started before; make a new one with watch_loop()")
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="offload-watchdog", daemon=True)
        self._thread.start()
        # The watch begins now, not before the thread started: start() waits for the new
        # thread, which a loaded machine can stretch past the threshold, and that wait is
        # the watchdog's own, not a block of the program's to report.
        with self._lock:
            self._last_beat = time.monotonic()
            # The first probe is posted here rather than at the watchdog thread's first
            # look, so that a block that begins as start() returns is seen at that first
            # look, however late it comes: on a loaded machine it can come after a block
            # has ended, and a probe posted then would be answered at once.
            self._probe_pending = True
        loop.call_soon(self._turned)
        self._watching.set()

    def stop(self) -> None:
        """Stops watching, once ``on_block`` has had the report of a block in progress.

        Calling it again is harmless.

        Raises:
            RuntimeError: The watchdog was not started, or this is not the loop's thread.
        """
        if self._thread is None or threading.get_ident() != self._loop_thread_id:
            raise RuntimeError("stop() needs a started watchdog, and must be called from its loop's thread")
        # The loop's thread is running this, so a block in progress has ended.
        self._turned()
        self._stopping.set()
        self._thread.join()

    def __enter__(self) -> LoopWatchdog:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> LoopWatchdog:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the loop's thread ---

    def _turned(self) -> None:
        """Runs on the loop's thread: the answer to a probe, and start() and stop()."""
        now = time.monotonic()
        with self._lock:
            self._last_beat = now
            self._probe_pending = False

    # --- the watchdog's thread ---

    def _watch(self) -> None:
        self._watching.wait()
        block: _Block | None = None
        wait = self._period
        # is_running() and is_closed() only read a flag, which is safe from any thread.
        # A loop closed without stop() ends the watch, so no thread is left behind.
        while not self._stopping.wait(min(wait, _LONGEST_WAIT)) and not self._loop.is_closed():
            if block is None:
                block, wait = self._look_for_block()
            else:
                block, wait = self._follow(block), self._period
        if block is not None:
            self._report(block, self._end_of(block))

    def _look_for_block(self) -> tuple[_Block | None, float]:
        """A block now in progress, or None; and the seconds to wait before looking again."""
        with self._lock:
            last_beat, answered = self._last_beat, not self._probe_pending
            self._probe_pending = True
        if answered:
            self._probe()
            return None, self._period
        wait = last_beat + self._threshold - time.monotonic()
        if wait > 0:  # answered by then, or blocked
            return None, min(wait, self._period)
        if not self._loop.is_running():  # stopped, not blocked: look again later
            return None, self._period
        stack = capture_stack(self._loop_thread_id)
        with self._lock:
            if self._last_beat != last_beat:
                # It answered while we looked: the stack may be from after the block.
                return None, self._period
        return _Block(last_beat, stack), self._period

    def _probe(self) -> None:
        # A RuntimeError says the loop was closed meanwhile: is_closed() ends the watch.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._turned)

    def _follow(self, block: _Block) -> _Block | None:
        stack = capture_stack(self._loop_thread_id)
        ended = self._end_of(block)
        if ended is None:
            block.latest = stack
            return block
        self._report(block, ended)
        return None

    def _end_of(self, block: _Block) -> float | None:
        """When ``block`` ended (the loop's first turn after it), or None while it lasts.

        No probe is posted while a block is followed, so the first turn after it, or
        stop(), is the first write to ``_last_beat`` since the block was seen.
        """
        with self._lock:
            last_beat = self._last_beat
        return None if last_beat == block.since else last_beat

    def _report(self, block: _Block, ended: float | None) -> None:
        if ended is None:  # the loop was closed during the block, without stop()
            ended = time.monotonic()
        report = BlockReport(
            duration=ended - block.since,
            stack=block.stack,
            end_stack=None if block.latest == block.stack else block.latest,
            started_at=time.time() - (time.monotonic() - block.since),
        )
        try:
            self._on_block(report)
        except Exception:
            logger.exception("on_block of offload.watch_loop() raised; the watchdog goes on")


def watch_loop(
    threshold: float = 0.05, on_block: Callable[[BlockReport], object] | None = None
) -> LoopWatchdog:
    """Watches the running event loop, and reports each call that blocks it, with its stack.

    Examples:
        ```python
        async with offload.watch_loop(threshold=0.1):
            await serve()  # each block over 100 ms is logged, naming the line to offload
        ```

    A watchdog thread posts a probe to the loop every ``threshold / 4``. When the loop
    has not run one for ``threshold`` seconds, the thread takes the loop thread's stack;
    when the loop runs it at last, the thread sends ``on_block`` one ``BlockReport`` for
    the whole block. While nothing blocks the loop pays one callback per probe (docs/guides/watchdog.md
    gives the measured overhead). It works on any asyncio loop, uvloop included, and
    watches one run of it: stop it before the loop stops running (the context manager
    does).

    Precision: a block is reported once the loop's last answer before it is ``threshold``
    old, so every block longer than ``threshold`` is reported (if the watchdog's thread
    gets the CPU in time), and none shorter than ``threshold * 3/4``. Its duration runs
    from that answer to the first one after the block (or to ``stop()``), so it can exceed
    the block by up to ``threshold / 4``. Blocks with no turn of the loop between them
    count as one. A call that holds the GIL all along (C code that does not release it)
    keeps the watchdog from looking until it returns, so its stack is taken just after.

    Thread safety: start and stop it on the loop's thread (the context manager does).
    ``on_block`` is called on the watchdog's thread, never on the loop's, so it must be
    thread-safe (logging and ``list.append`` are); ``stop()`` returns once it has had the
    report of a block in progress. An exception it raises is logged. Each watchdog is
    started once; after ``os.fork()`` the child has no watchdog thread.

    Args:
        threshold: Seconds the loop may go without turning before it counts as blocked;
            a positive, finite number. As with asyncio's own delays, there is no upper
            limit: one longer than the program will run (``1e12``, say) means that no
            block is ever reported.
        on_block: Called with each ``BlockReport``; by default, the report is logged as a
            warning on the ``offload`` logger.

    Returns:
        The watchdog, not yet started: enter it, or call its ``start()``.

    Raises:
        TypeError: ``threshold`` is not a number, or ``on_block`` is not callable.
        ValueError: ``threshold`` is not positive and finite.
    """
    return LoopWatchdog(threshold, on_block)


async def run_watched(
    awaitable: Awaitable[T], threshold: float, on_block: Callable[[BlockReport], object]
) -> T:
    """Awaits ``awaitable`` with its loop watched; the pytest plugin and the CLI use it."""
    with watch_loop(threshold, on_block):
        return await awaitable


def milliseconds(text: object) -> float:
    """Reads a threshold in milliseconds, as the command line and the pytest plugin take it.

    Raises:
        ValueError: ``text`` is not a positive, finite number.
    """
    try:
        ms = float(str(text))
    except ValueError:
        ms = math.nan
    if not 0 < ms < math.inf:
        raise ValueError(f"a threshold must be a positive number of milliseconds, not {text!r}")
    return ms


def _check_on_block(value: object) -> Callable[[BlockReport], object]:
    if not callable(value):
        raise TypeError(
            f"on_block must be callable (a function of one BlockReport), not {type(value).__name__}; "
            "pass None to log each report"
        )
    return value


def _check_threshold(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"threshold must be a number of seconds, not {type(value).__name__}")
    if not 0 < value < math.inf:
        raise ValueError(f"threshold must be a positive number of seconds, not {value}")
    return float(value)
