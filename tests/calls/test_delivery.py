"""Outcomes travel back to the loop in batches (a faulty one: test_faults)."""

from __future__ import annotations

import threading

import offload

from ..support.loops import LOOP_FACTORIES, Runner
from ..support.seams import gather_in_one_wakeup, inbox_of


def test_results_that_finish_together_wake_the_loop_once(
    run: Runner[None], pool: offload.Pool, drain_sizes: list[int]
) -> None:
    n = 16
    barrier = threading.Barrier(n, timeout=10)

    async def main() -> None:
        calls = [pool.run(barrier.wait) for _ in range(n)]
        assert sorted(await gather_in_one_wakeup(calls, drain_sizes)) == list(range(n))

    run(main())


class _FaultySettle:
    returning = None

    def settle(self) -> None:
        raise ValueError("broken outcome")


def test_an_inbox_whose_loop_is_gone_drops_outcomes(loop_name: str) -> None:
    """Through the seam ``inbox_of``: an inbox outlives its loop in the calls still running."""
    loop = LOOP_FACTORIES[loop_name]()
    inbox = inbox_of(loop)
    loop.close()
    inbox.put(_FaultySettle())  # closed: dropped, nothing raised
    del loop
    inbox.put(_FaultySettle())  # collected: dropped, nothing raised
    assert inbox._take_batch() == []
