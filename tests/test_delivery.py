"""Outcomes travel back to the loop in batches (a faulty one: test_faults)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import offload
from offload import _delivery

from .support import Runner, wait_until


def test_results_that_finish_together_wake_the_loop_once(
    run: Runner[None], pool: offload.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 16
    drains: list[int] = []
    original = _delivery.Inbox._drain

    def counting_drain(inbox: _delivery.Inbox) -> None:
        drains.append(len(inbox._items))
        original(inbox)

    monkeypatch.setattr(_delivery.Inbox, "_drain", counting_drain)
    barrier = threading.Barrier(n, timeout=10)

    async def main() -> None:
        inbox = _delivery.asyncio_inbox_for(asyncio.get_running_loop())
        calls = [pool.run(barrier.wait) for _ in range(n)]
        # Hold the loop's thread until all n outcomes wait in the inbox, as when the
        # loop is busy with other work while calls finish.
        wait_until(lambda: len(inbox._items) == n, what="all outcomes in the inbox")
        assert sorted(await asyncio.gather(*calls)) == list(range(n))
        assert drains == [n]

    run(main())


class _FaultySettle:
    def settle(self) -> None:
        raise ValueError("broken outcome")


def test_an_inbox_whose_loop_is_gone_drops_outcomes(loop_name: str) -> None:
    from .support import LOOP_FACTORIES

    loop = LOOP_FACTORIES[loop_name]()
    inbox = _delivery.AsyncioInbox(loop)
    loop.close()
    inbox.put(_FaultySettle())  # closed: dropped, nothing raised
    del loop
    inbox.put(_FaultySettle())  # collected: dropped, nothing raised
    assert inbox._items == []
