"""The pool driven through random sequences of steps, its invariants checked after each.

Hypothesis picks the steps: submit calls that return, raise or block on an event, in
bursts, each awaited by a task that, once its outcome is delivered, makes a next call
at once or does not (so threads return to the loop, and are taken back or not); turn
the loop once or more, so windows close; release blocked calls; cancel awaiters, of
queued calls and of running ones, or at once, racing the thread that takes the call;
let the idle timeout pass (on an injected clock, see IdleClock), which also ends the
wait of threads returning to a loop that has not turned; shut the pool down, dropping
its queue or not. After each step the test waits until the pool is quiet (every call
that can run is running, blocked, or done, and every awaiter whose outcome arrived has
made its next call) and checks what it observes against the pool's own account:

- ``stats()``: ``threads == busy + returning + idle + starting``, at most one waiting
  thread, busy threads equal to the calls inside their function, ``queued`` equal to
  the calls not started and not cancelled, and the queue empty unless every thread is
  busy;
- the pool's threads alive equal to ``threads``;
- a next call made while a thread was returning to the loop, with nothing queued,
  went to a returning thread: it took neither the idle thread nor a new one;
- no call ran twice; no call cancelled while queued, or dropped by shutdown, ran;
- every call whose awaiter was not cancelled delivered exactly its return value or its
  exception; a running call whose awaiter was cancelled saw ``offload.cancelled()``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import offload

from ..support.loops import LOOP_FACTORIES
from ..support.polling import wait_until
from ..support.pools import assert_invariant
from ..support.seams import IdleClock

# A liveness deadline for outcomes, not a timing assertion: a sound pool delivers in
# milliseconds, a lost outcome never.
LOST_AFTER = 10
ERRORS = (ValueError, KeyboardInterrupt, MemoryError, SystemExit)
NAME = "machine"


class Call:
    """One submitted call, as the test observes it from both sides."""

    def __init__(self, index: int, kind: str, error: type[BaseException], then: bool = False) -> None:
        self.kind = kind
        self.then = then  # whether the awaiter makes a next call once the outcome arrives
        self.expected: Any = error(f"call {index}") if kind == "raises" else index
        self.release = threading.Event()
        self.future: asyncio.Future[Any]
        self.awaiter: asyncio.Task[None] | None = None
        # Written by the pool thread that runs the call, under Machine.lock.
        self.runs = 0
        self.finished = False
        self.saw_cancelled: bool | None = None
        # The test's own account: why the awaiter was cancelled, if it was.
        self.cancelled_as: str | None = None  # "queued", "running", "racing" or "shutdown"

    @property
    def started(self) -> bool:
        return self.runs > 0

    @property
    def expects_delivery(self) -> bool:
        """Whether an outcome is on its way to the awaiter, to be waited for."""
        return (self.finished and self.cancelled_as is None) or self.cancelled_as == "shutdown"


class Machine(RuleBasedStateMachine):
    def __init__(self, loop_factory: Callable[[], asyncio.AbstractEventLoop], clock: IdleClock) -> None:
        super().__init__()
        self.loop = loop_factory()
        self.clock = clock
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.pool: offload.Pool  # made by the first step, make_pool

    # --- what the calls run ---

    def body(self, call: Call) -> Any:
        with self.lock:
            call.runs += 1
        try:
            if call.kind == "blocks":
                call.release.wait()
                call.saw_cancelled = offload.cancelled()
            if call.kind == "raises":
                raise call.expected
            return call.expected
        finally:
            with self.lock:
                call.finished = True

    def submit(self, calls: list[Call], *, cancel: bool = False) -> None:
        async def submit_all() -> None:
            for call in calls:
                self.start(call)
                if cancel:
                    # In the same step of the loop: its outcome cannot have arrived, but
                    # the idle thread may already run the call, or not.
                    call.cancelled_as = "racing"
                    assert call.future.cancel()

        self.loop.run_until_complete(submit_all())

    def start(self, call: Call) -> None:
        """Submits ``call`` and starts its awaiter; on the loop's thread."""
        call.future = self.pool.run(self.body, call)  # type: ignore[assignment]
        call.awaiter = self.loop.create_task(self.await_call(call))
        self.calls.append(call)

    async def await_call(self, call: Call) -> None:
        try:
            await call.future
        except BaseException:  # its outcome, or its cancellation: checked apart
            return
        if call.then and not self.pool.closed:
            self.make_next_call()

    def make_next_call(self) -> None:
        """The awaiter's next call, made as soon as its outcome arrived: in the window
        of the thread that delivered it, if no other call has taken that thread."""
        before = self.pool.stats()
        self.start(self.new_calls("returns", ValueError, 1)[0])
        after = self.pool.stats()
        if before.returning and not before.queued and not before.starting:
            # Between the two snapshots other threads may only finish calls and return:
            # the idle thread stays as it was, and no thread starts but by this call.
            assert (after.idle, after.starting, after.spawned) == (before.idle, 0, before.spawned)

    def new_calls(self, kind: str, error: type[BaseException], count: int, then: bool = False) -> list[Call]:
        return [Call(len(self.calls) + i, kind, error, then) for i in range(count)]

    # --- the steps ---

    @initialize(max_threads=st.integers(1, 4))
    def make_pool(self, max_threads: int) -> None:
        self.pool = offload.Pool(max_threads=max_threads, idle_timeout=10, name=NAME)

    @precondition(lambda self: not self.pool.closed)
    @rule(
        kind=st.sampled_from(["returns", "raises", "blocks"]),
        error=st.sampled_from(ERRORS),
        count=st.integers(1, 6),
        then=st.booleans(),
    )
    def submit_calls(self, kind: str, error: type[BaseException], count: int, then: bool) -> None:
        self.submit(self.new_calls(kind, error, count, then))

    @rule(turns=st.integers(1, 3))
    def turn_the_loop(self, turns: int) -> None:
        async def turn() -> None:
            for _ in range(turns):
                await asyncio.sleep(0)

        self.loop.run_until_complete(turn())

    @precondition(lambda self: self.pool.closed)
    @rule()
    def submit_to_a_closed_pool(self) -> None:
        async def refused() -> None:
            with pytest.raises(offload.PoolClosedError):
                self.pool.run(int)

        self.loop.run_until_complete(refused())

    @precondition(lambda self: any(not c.release.is_set() for c in self.calls if c.kind == "blocks"))
    @rule(data=st.data())
    def release_one(self, data: st.DataObject) -> None:
        blocked = [c for c in self.calls if c.kind == "blocks" and not c.release.is_set()]
        data.draw(st.sampled_from(blocked), label="released").release.set()

    @rule()
    def release_all(self) -> None:
        for call in self.calls:
            call.release.set()

    @precondition(lambda self: any(not c.future.done() for c in self.calls))
    @rule(data=st.data())
    def cancel_one(self, data: st.DataObject) -> None:
        # The pool is quiet between steps: a call that has not started is queued.
        pending = [c for c in self.calls if not c.future.done()]
        call = data.draw(st.sampled_from(pending), label="cancelled")
        call.cancelled_as = "running" if call.started else "queued"
        assert call.future.cancel()

    @precondition(lambda self: not self.pool.closed)
    @rule(error=st.sampled_from(ERRORS))
    def submit_and_cancel_at_once(self, error: type[BaseException]) -> None:
        # Never one that blocks: whether it ran would decide what the next steps find
        # (a thread held, or not), and Hypothesis needs the same steps to find the same.
        self.submit(self.new_calls("raises", error, 1), cancel=True)

    @rule()
    def let_the_idle_timeout_pass(self) -> None:
        # The loop does not run meanwhile: returning threads wait as long as the idle one.
        s = self.pool.stats()
        waiting = s.idle + s.returning
        wait_until(lambda: self.clock.waiting == waiting, what="the idle and returning threads to wait")
        self.clock.advance(self.pool.idle_timeout)
        wait_until(
            lambda: self.pool.stats().idle + self.pool.stats().returning == 0,
            what="the idle and returning threads to retire",
        )

    @precondition(lambda self: not self.pool.closed)
    @rule(cancel_queued=st.booleans())
    def shut_down(self, cancel_queued: bool) -> None:
        if cancel_queued:
            for call in self.calls:
                if not call.started and call.cancelled_as is None:
                    call.cancelled_as = "shutdown"
        self.pool.shutdown(wait=False, cancel_queued=cancel_queued)

    # --- the checks ---

    def quiet(self) -> bool:
        """Every call that can run has started, and only blocked calls are inside."""
        s = self.pool.stats()
        with self.lock:
            inside = [c for c in self.calls if c.started and not c.finished]
            waiting = sum(not c.started and c.cancelled_as is None for c in self.calls)
        alive = sum(t.name.startswith(f"{NAME}-") for t in threading.enumerate())
        return (
            all(c.kind == "blocks" and not c.release.is_set() for c in inside)  # held there
            and s.starting == 0
            and s.busy == len(inside)
            and s.queued == waiting
            and (waiting == 0 or s.busy == self.pool.max_threads)
            and alive == s.threads
        )

    def check_deliveries(self) -> None:
        calls = list(self.calls)  # the next calls made meanwhile are checked in the next round
        expected = [c.future for c in calls if c.expects_delivery]
        if expected:
            self.loop.run_until_complete(asyncio.wait(expected, timeout=LOST_AFTER))
        # Their awaiters resume, and make their next calls, before the next step.
        awaiters = [c.awaiter for c in calls if c.awaiter is not None and c.future.done()]
        if awaiters:
            self.loop.run_until_complete(asyncio.wait(awaiters, timeout=LOST_AFTER))
        for call in calls:
            assert call.runs <= 1, f"call ran {call.runs} times"
            if call.cancelled_as in ("queued", "shutdown"):
                assert call.runs == 0, f"a call cancelled while {call.cancelled_as} ran"
            if call.cancelled_as is not None:
                assert call.future.cancelled()
            elif call.finished:
                assert call.future.done(), "an outcome was lost"
                if call.kind == "raises":
                    assert call.future.exception() is call.expected
                else:
                    assert call.future.result() == call.expected
            if call.cancelled_as == "running" and call.kind == "blocks" and call.finished:
                assert call.saw_cancelled is True

    @invariant()
    def holds(self) -> None:
        made = -1
        while made != len(self.calls):  # again for the next calls the awaiters made
            made = len(self.calls)
            wait_until(self.quiet, timeout=LOST_AFTER, what=f"the pool to be quiet: {self.pool.stats()}")
            s = assert_invariant(self.pool)
            assert self.clock.waiting <= s.idle + s.returning
            assert s.peak_threads <= self.pool.max_threads, s
            with self.lock:
                assert s.completed == sum(c.finished for c in self.calls), s
            self.check_deliveries()

    def teardown(self) -> None:
        for call in self.calls:
            call.release.set()
        try:
            self.pool.shutdown(wait=True)
            assert all(c.finished or c.cancelled_as is not None for c in self.calls)
            self.check_deliveries()
            assert self.pool.stats().threads == 0
        finally:
            # Awaiters left waiting (a next call refused by the closed pool) end here.
            for call in self.calls:
                if call.awaiter is not None:
                    call.awaiter.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()


def test_the_pool_holds_under_random_steps(loop_name: str, idle_clock: IdleClock) -> None:
    run_state_machine_as_test(
        lambda: Machine(LOOP_FACTORIES[loop_name], idle_clock),
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
