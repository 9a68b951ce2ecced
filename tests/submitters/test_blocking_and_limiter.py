"""@offload.blocking and offload.Limiter."""

from __future__ import annotations

import asyncio
import threading

import pytest

import offload

from ..support.loops import Runner
from ..support.polling import wait_until
from ..support.pools import ConcurrencyProbe, Gate, MakePool, start_blocker


@offload.blocking
def add(a: int, b: int = 0) -> int:
    """Adds two numbers, slowly."""
    return a + b


def test_blocking_keeps_the_signature_and_runs_in_a_thread(
    run: Runner[None], default_pool: offload.Pool
) -> None:
    async def main() -> None:
        assert await add(1, b=2) == 3
        assert default_pool.stats().completed == 1

    run(main())
    assert add.__name__ == "add"
    assert add.__doc__ == "Adds two numbers, slowly."
    assert add.__wrapped__(2, 2) == 4  # type: ignore[attr-defined]


def test_blocking_with_a_pool_or_limiter_and_on_methods(run: Runner[None], pool: offload.Pool) -> None:
    limiter = offload.Limiter(2, pool=pool)

    class Store:
        @offload.blocking(pool)
        def get(self, key: str) -> str:
            return key.upper()

    @offload.blocking(limiter)
    def ident() -> int:
        return threading.get_ident()

    async def main() -> None:
        assert await Store().get("k") == "K"
        assert await ident() != threading.get_ident()
        assert pool.stats().completed == 2

    run(main())


def test_blocking_refuses_coroutine_functions() -> None:
    async def fetch() -> None:
        pass

    with pytest.raises(TypeError, match="is a coroutine function"):
        offload.blocking(fetch)  # type: ignore[arg-type]


class TestLimiter:
    def test_bounds_running_calls(self, run: Runner[None], pool: offload.Pool, gate: Gate) -> None:
        limiter = offload.Limiter(2, pool=pool)
        probe = ConcurrencyProbe(gate())

        async def main() -> None:
            calls = [limiter.run(probe.task) for _ in range(6)]
            probe.wait_inside(2)
            assert (limiter.running, limiter.waiting) == (2, 4)
            assert pool.stats().queued == 0  # held by the limiter, not queued in the pool
            probe.release.set()
            await asyncio.gather(*calls)
            assert probe.peak == 2
            assert (limiter.running, limiter.waiting) == (0, 0)

        run(main())
        assert repr(limiter) == "<offload.Limiter total=2 running=0 waiting=0>"

    def test_held_calls_start_in_fifo_order(self, run: Runner[None], pool: offload.Pool) -> None:
        limiter = offload.Limiter(1, pool=pool)
        order: list[int] = []

        async def main() -> None:
            await asyncio.gather(*(limiter.run(order.append, i) for i in range(10)))
            assert order == list(range(10))
            assert pool.stats().peak_threads == 1  # each finished call hands its thread on

        run(main())

    def test_a_held_call_that_is_cancelled_never_runs(
        self, run: Runner[None], pool: offload.Pool, gate: Gate
    ) -> None:
        limiter = offload.Limiter(1, pool=pool)
        release = gate()
        ran: list[str] = []

        async def main() -> None:
            first = limiter.run(release.wait)
            held = limiter.run(ran.append, "held")
            held.cancel()  # type: ignore[attr-defined]
            assert limiter.waiting == 0
            release.set()
            await first
            assert await limiter.run(ran.append, "after") is None
            assert ran == ["after"]
            assert limiter.running == 0

        run(main())

    def test_a_place_is_freed_when_a_pool_queued_call_is_cancelled(
        self, run: Runner[None], make_pool: MakePool, gate: Gate
    ) -> None:
        pool = make_pool(max_threads=1)
        limiter = offload.Limiter(2, pool=pool)
        release = gate()

        async def main() -> None:
            blocker = start_blocker(pool, release)
            queued_in_pool = limiter.run(int)
            assert (limiter.running, pool.stats().queued) == (1, 1)
            queued_in_pool.cancel()  # type: ignore[attr-defined]
            assert limiter.running == 0
            release.set()
            await blocker

        run(main())

    @pytest.mark.parametrize(("total", "error"), [(0, ValueError), (1.5, TypeError), (True, TypeError)])
    def test_bad_totals(self, total: object, error: type[Exception]) -> None:
        with pytest.raises(error, match="Limiter total"):
            offload.Limiter(total)  # type: ignore[arg-type]

    def test_a_pool_that_is_not_a_pool_is_refused_at_once(self) -> None:
        with pytest.raises(TypeError, match=r"Limiter pool must be an offload\.Pool, not int"):
            offload.Limiter(1, pool=3)  # type: ignore[arg-type]

    def test_a_closed_pool_runs_the_held_calls_and_refuses_new_ones(
        self, run: Runner[None], pool: offload.Pool, gate: Gate
    ) -> None:
        limiter = offload.Limiter(1, pool=pool)
        release = gate()

        async def main() -> None:
            first = limiter.run(release.wait)
            held = limiter.run(int, "7")
            pool.shutdown(wait=False)
            with pytest.raises(offload.PoolClosedError, match="pool 'test' is shut down"):
                limiter.run(int)  # a new call: it would be held, and is refused
            release.set()
            assert await first is True
            assert await held == 7
            assert (limiter.running, limiter.waiting) == (0, 0)

        run(main())

    def test_pool_shutdown_waits_for_the_held_calls(self, pool: offload.Pool, gate: Gate) -> None:
        limiter = offload.Limiter(1, pool=pool)
        release = gate()
        ran: list[str] = []
        executor = offload.Executor(pool=pool, limits={ran.append: limiter, release.wait: limiter})
        executor.submit(release.wait)
        held = executor.submit(ran.append, "held")
        wait_until(lambda: pool.stats().busy == 1, what="the first call to start")
        pool.shutdown(wait=False)
        waited = threading.Thread(target=pool.shutdown)  # wait=True
        waited.start()
        assert limiter.waiting == 1
        assert waited.is_alive()
        release.set()
        waited.join(timeout=10)
        assert not waited.is_alive()
        assert (ran, held.done()) == (["held"], True)
