"""Short calls from a backlog stay on the threads already busy (the pool's point 8).

A thread that arrives while the busy threads take the queued calls as fast as one each
does not take one: it becomes the idle thread and watches the queue, which it takes
over (and the growth goes on) once the queue stops moving, when the busy threads block.
Thread starts are held by a seam, so each test decides when the watching thread arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

import offload

from ..support.loops import Runner
from ..support.polling import wait_until
from ..support.pools import Gate, assert_invariant
from ..support.seams import hold_thread_starts, never_look_at_the_queue

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
