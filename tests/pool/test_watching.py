"""Short calls stay on the threads already busy (the pool's point 8).

A thread that arrives while the busy threads take the queued calls as fast as one each
does not take one: it becomes the idle thread and watches the queue, which it takes
over (and the growth goes on) once the queue stops moving, when the busy threads block.
Thread starts are held by a seam, so each test decides when the watching thread arrives.
So does a thread that ends a short call beside busy threads whose calls end too; while
it watches, calls wait for the busy threads, none is woken for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

import offload

from ..support.loops import Runner
from ..support.polling import awaited, wait_until, windows_closed
from ..support.pools import Gate, assert_invariant
from ..support.seams import (
    HeldLooks,
    HeldPokes,
    calls_are_short,
    hold_looks,
    hold_poked_threads,
    hold_thread_starts,
    never_look_at_the_queue,
)

SHORT = 3

Held = list[Callable[[], None]]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Held:
    """The pool's thread starts after its first, held until the test starts them."""
    return hold_thread_starts(monkeypatch, let_through=1)


def ran_on(ran: list[str]) -> None:
    ran.append(threading.current_thread().name)


@dataclass
class Backlog:
    second: threading.Event  # holds the busy thread's second blocking call
    last: Awaitable[None]  # the call left queued
    ran: list[str]  # the threads the short calls and the last ran on, in order


async def backlog_behind_one_thread(pool: offload.Pool, gate: Gate, held: Held) -> Backlog:
    """One thread takes a blocking call, SHORT short calls and a second blocking call,
    one after another, while the thread it started for the queue is held; a last call
    stays queued."""
    first, second, ran = gate(), gate(), []
    pool.run(first.wait)
    shorts = [pool.run(ran_on, ran) for _ in range(SHORT)]
    pool.run(second.wait)
    last = pool.run(ran_on, ran)
    wait_until(lambda: len(held) == 1, what="the second thread to be asked for")
    first.set()
    wait_until(lambda: pool.stats().completed == 1 + SHORT, what="the short calls to run")
    del shorts
    s = assert_invariant(pool)
    assert (s.threads, s.busy, s.starting, s.queued) == (2, 1, 1, 1), s
    return Backlog(second, last, ran)


def test_a_thread_arriving_at_a_moving_queue_watches_it(
    run: Runner[None], pool: offload.Pool, gate: Gate, held: Held, monkeypatch: pytest.MonkeyPatch
) -> None:
    never_look_at_the_queue(monkeypatch)

    async def main() -> None:
        backlog = await backlog_behind_one_thread(pool, gate, held)
        held.pop()()
        wait_until(lambda: pool.stats().spawned == 2, what="the second thread to arrive")
        s = assert_invariant(pool)
        # It did not take the queued call: it is the idle thread, watching.
        assert (s.threads, s.busy, s.idle, s.queued) == (2, 1, 1, 1), s
        backlog.second.set()  # the busy thread takes the queued call, as it would have anyway
        await backlog.last
        assert backlog.ran[-1] == backlog.ran[0]
        # The queue is empty: a new call goes to the idle thread at once, not at its look.
        assert await pool.run(threading.current_thread) is not threading.current_thread()
        s = assert_invariant(pool)
        assert (s.spawned, s.completed) == (2, SHORT + 4), s

    run(main())


def test_a_watching_thread_takes_over_a_queue_that_stops(
    run: Runner[None], pool: offload.Pool, gate: Gate, held: Held
) -> None:
    async def main() -> None:
        backlog = await backlog_behind_one_thread(pool, gate, held)
        held.pop()()
        await backlog.last  # the busy thread stays blocked: the second thread runs it
        assert backlog.ran[-1] != backlog.ran[0]
        s = assert_invariant(pool)
        assert (s.spawned, s.busy, s.queued) == (2, 1, 0), s
        backlog.second.set()

    run(main())


def test_a_watching_thread_takes_over_and_grows_the_pool(
    run: Runner[None], pool: offload.Pool, gate: Gate, held: Held
) -> None:
    # Two calls stay queued behind a blocked thread: the watching thread takes the
    # oldest over and starts a thread for the other, as a starting thread does (point 2).
    # The other runs while the first thread is still blocked, on the second thread or
    # the third, whichever reaches it first.
    async def main() -> None:
        backlog = await backlog_behind_one_thread(pool, gate, held)
        all_in = threading.Barrier(2, timeout=10)
        after = pool.run(all_in.wait)
        held.pop()()
        wait_until(lambda: len(held) == 1, what="the third thread to be asked for")
        held.pop()()
        await backlog.last
        all_in.wait()  # on the loop's thread, until the call runs
        await after
        wait_until(lambda: pool.stats().spawned == 3, what="the third thread to arrive")
        s = assert_invariant(pool)
        assert (s.threads, s.busy, s.queued) == (3, 1, 0), s
        backlog.second.set()

    run(main())


def name() -> str:
    """The pool thread's name, without the call's: ``{pool}-{n}``."""
    return threading.current_thread().name.partition(":")[0]


def wait_then_name(event: threading.Event) -> str:
    event.wait()
    return name()


@dataclass
class ShortBesideBusy:
    watcher: str  # the thread that ended a short call and watches
    busy: Awaitable[str]  # the call the busy thread is blocked in, until released
    release_busy: threading.Event
    other: Awaitable[str]  # a second thread's, blocked too, until released
    release_other: threading.Event


async def short_call_ended_beside_busy_threads(
    pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> ShortBesideBusy:
    """Three threads busy; the first ends its call, then a second, and takes a third that
    blocks; the second thread then ends a short call (every call is short, by the seam
    calls_are_short) after another thread's calls ended, with none waiting, and the
    calls that ended last, one more than the two busy threads, all short: it watches
    the queue."""
    calls_are_short(monkeypatch, short=True)
    first, second, third, fourth = gate(), gate(), gate(), gate()
    calls = [pool.run(wait_then_name, event) for event in (first, second, third)]
    wait_until(lambda: pool.stats().busy == 3, what="three threads busy")
    first.set()
    assert await calls[0] == await pool.run(name)
    other = asyncio.ensure_future(awaited(pool.run(wait_then_name, fourth)))
    wait_until(lambda: pool.stats().busy == 3, what="the first thread to take its next call")
    second.set()
    watcher = await calls[1]
    s = assert_invariant(pool)
    assert (s.threads, s.busy, s.idle, s.returning, s.queued) == (3, 2, 1, 0, 0), s
    busy = asyncio.ensure_future(awaited(calls[2]))
    return ShortBesideBusy(watcher, busy, third, other, fourth)


def test_a_call_beside_short_ones_waits_for_a_busy_thread_not_a_wake(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watching thread never looks (seam never_look_at_the_queue): the call submitted
    # while it watches stays queued until the busy thread, finishing, takes it.
    never_look_at_the_queue(monkeypatch)

    async def main() -> None:
        state = await short_call_ended_beside_busy_threads(pool, gate, monkeypatch)
        call = pool.run(name)
        s = assert_invariant(pool)
        assert (s.busy, s.idle, s.queued) == (2, 1, 1), s
        state.release_busy.set()
        busy = await state.busy
        assert await call == busy != state.watcher
        state.release_other.set()
        await state.other
        s = assert_invariant(pool)
        assert (s.spawned, s.completed, s.queued) == (3, 6, 0), s

    run(main())


def test_a_watching_thread_takes_over_a_call_behind_a_blocked_one(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        state = await short_call_ended_beside_busy_threads(pool, gate, monkeypatch)
        # The busy threads stay blocked: at its look, the watching thread runs the call.
        assert await pool.run(name) == state.watcher
        s = assert_invariant(pool)
        assert (s.spawned, s.busy, s.queued) == (3, 2, 0), s
        state.release_busy.set()
        state.release_other.set()
        await state.busy
        await state.other

    run(main())


def test_short_calls_beside_a_blocked_one_keep_returning(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only short calls end while the other thread stays blocked: the thread ending them
    # returns to its loop each time, as without the watch; were it to watch, never
    # looking (seam never_look_at_the_queue), the next call would wait for ever.
    calls_are_short(monkeypatch, short=True)
    never_look_at_the_queue(monkeypatch)
    release = gate()

    async def main() -> None:
        blocked = pool.run(release.wait)
        ran = {await pool.run(name) for _ in range(SHORT)}
        assert len(ran) == 1
        s = assert_invariant(pool)
        assert (s.spawned, s.busy, s.queued) == (2, 1, 0), s
        release.set()
        await blocked

    run(main())


def test_a_short_call_beside_calls_that_block_returns(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server's pattern: another thread's long call ended since this thread's last one,
    # and two threads stay busy. The short call that ends next is the only short one of
    # the calls that ended last: its thread returns to its loop, which claims it for the
    # next call, rather than watch (which, never looking here, would hold that call).
    calls_are_short(monkeypatch, short=False)
    never_look_at_the_queue(monkeypatch)
    first, second, third, fourth = gate(), gate(), gate(), gate()

    async def main() -> None:
        calls = [pool.run(wait_then_name, event) for event in (first, second, third)]
        wait_until(lambda: pool.stats().busy == 3, what="three threads busy")
        first.set()
        await calls[0]
        other = pool.run(wait_then_name, fourth)
        wait_until(lambda: pool.stats().busy == 3, what="the first thread to take its next call")
        calls_are_short(monkeypatch, short=True)
        second.set()
        returned = await calls[1]
        s = assert_invariant(pool)
        assert (s.threads, s.busy, s.idle, s.returning, s.queued) == (3, 2, 0, 1, 0), s
        assert await pool.run(name) == returned
        third.set()
        fourth.set()
        await calls[2]
        await other
        s = assert_invariant(pool)
        assert (s.spawned, s.completed, s.queued) == (3, 5, 0), s

    run(main())


def test_the_watch_goes_on_between_turns_and_ends_once_no_call_ends(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watching thread's looks are held until the test lets one through (seam
    # hold_looks). Once the busy threads' calls have ended, none busy and none queued,
    # the pool is between two turns of its loops' short calls: the watch goes on. At the
    # next look, no call having ended since, it ends.
    looks = hold_looks(monkeypatch)

    async def main() -> None:
        state = await short_call_ended_beside_busy_threads(pool, gate, monkeypatch)
        state.release_busy.set()
        state.release_other.set()
        await state.busy
        await state.other
        await windows_closed(pool)  # the threads that ran them leave: one is waiting
        looks.let_one_through()
        assert looks.outcomes == ["watching"]
        looks.let_one_through()
        assert looks.outcomes == ["watching", "idle"]
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.queued, s.spawned) == (1, 1, 0, 3), s
        assert await pool.run(name) == state.watcher

    run(main())


async def idle_thread_beside_busy_ones(
    pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> tuple[ShortBesideBusy, HeldLooks]:
    """Two threads busy, blocked, and an idle thread that does not watch: it watched, and
    at its look (seam hold_looks, by which no other look happens unless let through) the
    busy threads had ended no call."""
    looks = hold_looks(monkeypatch)
    state = await short_call_ended_beside_busy_threads(pool, gate, monkeypatch)
    looks.let_one_through()
    assert looks.outcomes == ["idle"]
    return state, looks


def test_a_short_call_ended_beside_the_idle_thread_makes_it_watch(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread ends a short call beside a busy one while the idle thread does not watch:
    # the idle thread is woken to watch in its place. A call submitted then is queued,
    # not handed to the idle thread; the thread that ended the short call takes it once
    # its window closes.
    async def main() -> None:
        state, looks = await idle_thread_beside_busy_ones(pool, gate, monkeypatch)
        state.release_busy.set()
        ended_on = await state.busy
        call = pool.run(name)
        s = assert_invariant(pool)
        assert (s.busy, s.idle, s.queued) == (1, 1, 1), s
        assert await call == ended_on != state.watcher
        assert looks.outcomes == ["idle"]  # no look let through: it watched on
        state.release_other.set()
        await state.other

    run(main())


async def poked_then_busy_one_released(
    pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch, pokes: HeldPokes
) -> tuple[ShortBesideBusy, HeldLooks]:
    """As idle_thread_beside_busy_ones; then a busy thread ends a short call, which pokes
    the idle thread, held awake (seam hold_poked_threads) before it reads why."""
    state, looks = await idle_thread_beside_busy_ones(pool, gate, monkeypatch)
    state.release_busy.set()
    await state.busy
    wait_until(pokes.held.is_set, what="the idle thread to be poked")
    return state, looks


def test_a_poked_thread_claimed_by_shutdown_leaves(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shutdown claims the idle thread after a poke woke it and before it read why (seam
    # hold_poked_threads): it reads that it was claimed, not poked, and leaves.
    pokes = hold_poked_threads(monkeypatch)

    async def main() -> None:
        state, _ = await poked_then_busy_one_released(pool, gate, monkeypatch, pokes)
        pool.shutdown(wait=False)
        pokes.go.set()
        state.release_other.set()
        await state.other
        pool.shutdown(wait=True)
        assert pool.stats().threads == 0

    run(main())


def test_a_call_beside_a_poked_thread_waits_for_its_first_look(
    run: Runner[None], pool: offload.Pool, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No thread is busy while the idle thread is on its way to watch (held awake, seam
    # hold_poked_threads): a call is queued for it, not handed to it, which would release
    # its wake a second time. At its first look, the queue not moving, it takes the call.
    pokes = hold_poked_threads(monkeypatch)

    async def main() -> None:
        state, looks = await poked_then_busy_one_released(pool, gate, monkeypatch, pokes)
        state.release_other.set()
        await state.other
        await windows_closed(pool)
        call = pool.run(name)
        s = assert_invariant(pool)
        assert (s.threads, s.busy, s.idle, s.queued) == (1, 0, 1, 1), s
        pokes.go.set()
        looks.let_one_through()
        assert looks.outcomes == ["idle", "takes over"]
        assert await call == state.watcher
        await windows_closed(pool)
        s = assert_invariant(pool)
        assert (s.threads, s.idle, s.queued, s.spawned) == (1, 1, 0, 3), s

    run(main())
