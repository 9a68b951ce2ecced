"""The seams through which tests reach offload's private modules, to force a race or
a fault, or to watch what no public API shows; the only test module that imports them.

Each seam says what it hooks. A test that uses one names the seam in its docstring or
its comments; everything else in the tests goes through offload's public API.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from offload._base import lock as hot_lock
from offload._calls import delivery
from offload._calls.asyncio_call import AsyncioCall
from offload._pool import returning, threads, watching
from offload._watchdog import report, watchdog

from .polling import wait_until

T = TypeVar("T")

Stack = report.Stack
WINDOW_TURNS = delivery.WINDOW_TURNS


def outcomes_waiting(loop: asyncio.AbstractEventLoop) -> int:
    """Outcomes in the inbox of ``loop`` (asyncio's or uvloop's), not yet delivered."""
    return len(delivery.asyncio_inbox_for(loop)._items)


def outcomes_waiting_on_trio(token: object) -> int:
    """Outcomes in the inbox of the trio run whose token is ``token``."""
    return len(delivery.trio_inbox_for(token)._items)


def inbox_of(loop: asyncio.AbstractEventLoop) -> delivery.AsyncioInbox:
    """A new inbox of ``loop``, as a call made on it would get one."""
    return delivery.AsyncioInbox(loop)


def count_drains(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Hooks ``Inbox._drain``: the size of each batch of outcomes delivered, one entry
    per wake-up of a loop."""
    sizes: list[int] = []
    original = delivery.Inbox._drain

    def counting_drain(inbox: delivery.Inbox) -> None:
        sizes.append(len(inbox._items))
        original(inbox)

    monkeypatch.setattr(delivery.Inbox, "_drain", counting_drain)
    return sizes


def count_window_looks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Hooks ``Inbox._close_windows``: the turns left at each look, once a turn, at the
    windows of the outcomes a drain delivered."""
    turns_left: list[int] = []
    original = delivery.Inbox._close_windows

    def counting_look(inbox: delivery.Inbox, items: list[Any], turns: int) -> None:
        turns_left.append(turns)
        original(inbox, items, turns)

    monkeypatch.setattr(delivery.Inbox, "_close_windows", counting_look)
    return turns_left


def wrap_schedule_drain(
    monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[Callable[[Any], bool], Any], bool]
) -> None:
    """Hooks how an asyncio inbox wakes its loop: ``wrapper(original, inbox)`` runs instead."""
    original = delivery.AsyncioInbox._schedule_drain
    monkeypatch.setattr(delivery.AsyncioInbox, "_schedule_drain", lambda inbox: wrapper(original, inbox))


def wrap_settle(
    monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[Callable[[Any], None], Any], None]
) -> None:
    """Hooks how an asyncio call hands its outcome to its awaiter, on the loop's thread."""
    original = AsyncioCall.settle
    monkeypatch.setattr(AsyncioCall, "settle", lambda call: wrapper(original, call))


def value_of(call: Any) -> Any:
    """The value an offloaded call returned, as its settle() sees it."""
    return call._value


def refuse_thread_starts(monkeypatch: pytest.MonkeyPatch, refuse: Callable[..., None]) -> None:
    """Makes the pool's start of a new thread call ``refuse`` instead (which raises)."""
    monkeypatch.setattr(threads, "_launch", refuse)


def wrap_thread_starts(
    monkeypatch: pytest.MonkeyPatch,
    wrapper: Callable[[Callable[[threading.Thread], None], threading.Thread], None],
) -> None:
    """Hooks the pool's start of a new thread: ``wrapper(original, thread)`` runs instead."""
    original = threads._launch
    monkeypatch.setattr(threads, "_launch", lambda thread: wrapper(original, thread))


#: How the loop's thread takes a lock a pool thread may hold, and its tries before it blocks.
take_lock = hot_lock.take
LOCK_YIELDS = hot_lock.YIELDS


def on_lock_yield(monkeypatch: pytest.MonkeyPatch, hook: Callable[[], None]) -> None:
    """Hooks the moment a thread that found a lock held in ``take_lock()`` gives the GIL
    up, before it tries again: ``hook()`` runs instead of ``time.sleep(0)``."""
    monkeypatch.setattr(hot_lock, "_sleep", lambda _seconds: hook())


def gil_enabled(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    """What ``take_lock()`` finds of the GIL: enabled, or disabled as on a free-threaded build."""
    monkeypatch.setattr(hot_lock, "gil_enabled", lambda: enabled)


def never_look_at_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Returning threads no longer look whether their loop has closed: they stay
    returning to a closed loop until the pool shuts down."""
    monkeypatch.setattr(threads, "LOOP_CHECK_INTERVAL", math.inf)


def never_look_at_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread that arrives to watch the queue (the pool's point 8) never looks at it:
    it stays watching until the queue empties, a call is handed to it, or shutdown."""
    monkeypatch.setattr(watching, "WATCH_FIRST_LOOK", math.inf)


#: Windows in a row whose thread leaves, after which a loop gets one thread back at a time.
UNUSED_RETURNS = returning.UNUSED_RETURNS
#: The loops whose unused returns a pool counts at once.
LOOPS_COUNTED = returning.LOOPS_COUNTED


def loops_counted(pool: Any) -> int:
    """The loops whose windows ``pool`` counts as they close with their thread leaving."""
    return len(pool._unused_returns)


def calls_are_short(monkeypatch: pytest.MonkeyPatch, short: bool) -> None:
    """Every call counts as short (a thread that finishes one may watch the queue, the
    pool's point 8), or none does (it returns to its loop, as without the watch)."""
    monkeypatch.setattr(watching, "SHORT_CALL", math.inf if short else 0.0)


class HeldLooks:
    """The watching thread's looks at the queue (the pool's point 8), held until the test
    lets one through; what each look let through decided, in order ("watching", "takes
    over", or what a thread without a call does next: "idle", "busy", "gone")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._allowed = 0
        self.outcomes: list[str] = []

    def let_one_through(self) -> None:
        """Lets the watching thread's next look happen, and waits until it has."""
        seen = len(self.outcomes)
        with self._lock:
            self._allowed += 1
        wait_until(lambda: len(self.outcomes) > seen, what="the watching thread to look")

    def _take_one(self) -> bool:
        with self._lock:
            if not self._allowed:
                return False
            self._allowed -= 1
            return True


def hold_looks(monkeypatch: pytest.MonkeyPatch) -> HeldLooks:
    """Holds the watching thread's looks: until the test lets one through, each look
    changes nothing, and the thread watches on."""
    looks = HeldLooks()
    original = watching.QueueWatch._look_at_queue_locked

    def look(pool: watching.QueueWatch, worker: threads._Worker) -> str:
        if not looks._take_one():
            return "watching"
        outcome = original(pool, worker)
        looks.outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(watching.QueueWatch, "_look_at_queue_locked", look)
    return looks


@dataclass
class HeldPokes:
    """Idle threads woken to watch the queue (poked, the pool's point 8), each held once
    awake, before it reads why it was woken, until ``go`` is set."""

    held: threading.Event  # set once a poked thread is held
    go: threading.Event


def hold_poked_threads(monkeypatch: pytest.MonkeyPatch) -> HeldPokes:
    """Holds each thread woken by a poke before it takes the pool's lock to read it."""
    pokes = HeldPokes(threading.Event(), threading.Event())
    original = watching.QueueWatch._woken_to_watch

    def woken_to_watch(pool: watching.QueueWatch, worker: threads._Worker) -> bool:
        pokes.held.set()
        pokes.go.wait()
        return original(pool, worker)

    monkeypatch.setattr(watching.QueueWatch, "_woken_to_watch", woken_to_watch)
    return pokes


def hold_thread_starts(monkeypatch: pytest.MonkeyPatch, let_through: int) -> list[Callable[[], None]]:
    """Lets the pool's first ``let_through`` thread starts happen; each later one is held:
    the list returned gets a function per held start that starts the thread. The pool
    counts a held thread as starting meanwhile."""
    held: list[Callable[[], None]] = []
    starts = [0]

    def holding(original: Callable[[threading.Thread], None], thread: threading.Thread) -> None:
        starts[0] += 1
        if starts[0] <= let_through:
            original(thread)
        else:
            held.append(lambda: original(thread))

    wrap_thread_starts(monkeypatch, holding)
    return held


def wrap_capture_stack(
    monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[Callable[[int], Stack], int], Stack]
) -> None:
    """Hooks the watchdog's look at the loop thread's stack."""
    original = report.capture_stack
    monkeypatch.setattr(watchdog, "capture_stack", lambda thread_id: wrapper(original, thread_id))


async def gather_in_one_wakeup(calls: list[Awaitable[T]], drain_sizes: list[int]) -> list[T]:
    """Gathers ``calls`` after holding the loop's thread until all their outcomes wait in
    its inbox, as when the loop is busy while they finish; checks that one wake-up of
    the loop delivered them all (``drain_sizes`` is the fixture)."""
    loop = asyncio.get_running_loop()
    wait_until(lambda: outcomes_waiting(loop) == len(calls), what="all outcomes in the inbox")
    results = await asyncio.gather(*calls)
    assert drain_sizes == [len(calls)]
    return results


class IdleClock:
    """The clock of the idle timeout, moved by the test instead of by time passing.

    ``install()`` gives every pool thread made afterwards a wake lock that waits on this
    clock: an idle thread times out when ``advance()`` takes the clock past its
    ``idle_timeout`` from when its wait began, at once and never before, so a test lets
    an hour pass in a step. ``waiting`` tells when the idle thread has begun to wait (it
    is counted idle a little before, while it delivers its last outcome).

    A thread woken (its wake released: handed a call, told to leave, or poked to watch
    the queue) is no longer counted, though it may not have seen it yet: else a thread
    on its way out could stand in for one still to start its wait.
    """

    # How often a timed wait reads the clock; a call handed over ends the wait at once.
    POLL = 0.001

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0.0
        self._waiting: list[threading.Lock] = []  # the wake lock of each timed wait

    @property
    def now(self) -> float:
        with self._lock:
            return self._now

    @property
    def waiting(self) -> int:
        """Threads in a timed wait on this clock now, and not woken."""
        with self._lock:
            return sum(lock.locked() for lock in self._waiting)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        class ClockedWorker(threads._Worker):
            def __init__(self, pool: threads.PoolThreads, base_name: str) -> None:
                super().__init__(pool, base_name)
                self.wake = _ClockedWake(self.wake, clock)  # type: ignore[assignment]

        monkeypatch.setattr(threads, "_Worker", ClockedWorker)
        monkeypatch.setattr(threads, "_monotonic", lambda: clock.now)

    def _wait(self, lock: threading.Lock, timeout: float) -> bool:
        with self._lock:
            deadline = self._now + timeout
            self._waiting.append(lock)
        try:
            while not lock.acquire(timeout=self.POLL):
                if self.now >= deadline:
                    return False
            return True
        finally:
            with self._lock:
                self._waiting.remove(lock)


class _ClockedWake:
    """A worker's wake lock whose timed waits read an IdleClock."""

    def __init__(self, lock: threading.Lock, clock: IdleClock) -> None:
        self._lock = lock
        self._clock = clock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout < 0:
            return self._lock.acquire()
        if timeout <= watching.WATCH_LONGEST_LOOK:
            # A watching thread's look at the queue (the pool's point 8) keeps real time:
            # it is how queued calls reach a thread once the busy ones block. A short
            # idle wait read on the clock would only end when it moves, and reads it again.
            return self._lock.acquire(timeout=timeout)
        return self._clock._wait(self._lock, timeout)

    def release(self) -> None:
        self._lock.release()


def executor_future(front: Any, call: Any) -> Any:
    """The executor's future of ``call``, made through ``front`` (a via(), ProcessPool or
    Cluster front) and not finished; None once finished."""
    in_flight = front._in_flight
    with in_flight.lock:
        return in_flight.get(call)


def executor_futures(front: Any) -> list[Any]:
    """The executor's futures of every call in flight through ``front``."""
    futures: list[Any] = front._in_flight.values()
    return futures
