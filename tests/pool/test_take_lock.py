"""How the loop's thread takes a lock that a pool thread may hold (``Pool._submit``, the
inbox's batch, an Executor's and a Limiter's admission): as ``acquire()`` does, but a
held lock is tried again after giving the GIL up, ``LOCK_YIELDS`` times, before it
blocks on it; without the GIL it blocks at once.

That this breaks convoys is a matter of speed, measured by ``python -m benchmarks.convoy``;
these tests pin what it does, step by step, with the yields hooked (seam ``on_lock_yield``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ..support.seams import LOCK_YIELDS, gil_enabled, on_lock_yield, take_lock

WAIT = 10


class Taker:
    """A thread that takes ``lock`` with ``take_lock()``, then sets ``inside``."""

    def __init__(self, lock: threading.Lock) -> None:
        self.inside = threading.Event()
        self.thread = threading.Thread(target=self._take, args=(lock,), name="taker")
        self.thread.start()
        TAKERS.append(self)

    def _take(self, lock: threading.Lock) -> None:
        take_lock(lock)
        self.inside.set()

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


TAKERS: list[Taker] = []


@pytest.fixture(autouse=True)
def with_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GIL as take_lock() finds it: enabled, on a free-threaded build too."""
    gil_enabled(monkeypatch, enabled=True)


@pytest.fixture
def lock() -> Iterator[threading.Lock]:
    """A lock held by the test; a test that fails before it lets go does not leave its
    taker blocked."""
    held = threading.Lock()
    held.acquire()
    yield held
    while TAKERS:
        taker = TAKERS.pop()
        if not taker.inside.is_set() and held.locked():
            held.release()
        taker.join()


def counting_yields(monkeypatch: pytest.MonkeyPatch, at: int, then: threading.Event) -> list[int]:
    """Counts the yields in one list entry; sets ``then`` at the ``at``-th."""
    yields = [0]

    def counted() -> None:
        yields[0] += 1
        if yields[0] == at:
            then.set()

    on_lock_yield(monkeypatch, counted)
    return yields


def test_a_free_lock_is_taken_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    yields = counting_yields(monkeypatch, at=1, then=threading.Event())
    lock = threading.Lock()
    take_lock(lock)
    assert lock.locked()
    assert yields == [0]


def test_a_held_lock_is_tried_after_each_yield_then_waited_for(
    monkeypatch: pytest.MonkeyPatch, lock: threading.Lock
) -> None:
    all_tried = threading.Event()
    yields = counting_yields(monkeypatch, at=LOCK_YIELDS, then=all_tried)
    taker = Taker(lock)
    assert all_tried.wait(WAIT)
    # Past its tries it blocks, as acquire() does: it neither spins on nor gets in.
    assert not taker.inside.is_set()
    lock.release()
    assert taker.inside.wait(WAIT)
    taker.join()
    assert yields == [LOCK_YIELDS]
    assert lock.locked()  # the taker's now


def test_a_lock_released_while_the_thread_yields_is_taken_at_its_next_try(
    monkeypatch: pytest.MonkeyPatch, lock: threading.Lock
) -> None:
    # The holder, which a yield lets run, leaves its critical section during the third.
    yields = [0]

    def holder_leaves_at_the_third() -> None:
        yields[0] += 1
        if yields[0] == 3:
            lock.release()

    on_lock_yield(monkeypatch, holder_leaves_at_the_third)
    taker = Taker(lock)
    assert taker.inside.wait(WAIT)
    taker.join()
    assert yields == [3]
    assert lock.locked()


def test_without_the_gil_a_held_lock_is_waited_for_at_once(
    monkeypatch: pytest.MonkeyPatch, lock: threading.Lock
) -> None:
    # No thread waits for a GIL there, so none holds a lock while it does: no convoy.
    gil_enabled(monkeypatch, enabled=False)
    yields = counting_yields(monkeypatch, at=1, then=threading.Event())
    taker = Taker(lock)
    assert not taker.inside.wait(0.05)  # held: it cannot get in, and has had time to yield
    lock.release()
    assert taker.inside.wait(WAIT)
    taker.join()
    assert yields == [0]
