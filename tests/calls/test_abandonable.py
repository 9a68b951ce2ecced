"""``offload.abandonable()``: a call that may be left running once its awaiter is
cancelled (what exit then does: tests/pool/test_exit_and_fork.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import offload

from ..support.loops import Runner
from ..support.pools import CancelWatch, Gate


def test_it_runs_the_function_under_its_own_name(run: Runner[None], pool: offload.Pool) -> None:
    def parse(text: str, *, base: int = 10) -> tuple[int, str]:
        return int(text, base), threading.current_thread().name

    async def main() -> None:
        marked = offload.abandonable(parse)
        assert await pool.run(marked, "ff", base=16) == (
            255,
            "test-1:test_it_runs_the_function_under_its_own_name.<locals>.parse",
        )
        assert marked("7") == (7, threading.current_thread().name)  # still a plain callable
        assert await offload.Limiter(1, pool=pool).run(marked, "8") == (
            8,
            "test-1:test_it_runs_the_function_under_its_own_name.<locals>.parse",
        )

    run(main())
    assert repr(offload.abandonable(int)) == "abandonable(<class 'int'>)"


def test_a_cancelled_call_sees_it_and_finishes(run: Runner[None], pool: offload.Pool, gate: Gate) -> None:
    watch = CancelWatch(gate)

    async def main() -> None:
        call = pool.run(offload.abandonable(watch.call))
        await asyncio.to_thread(watch.started.wait)
        call.cancel()  # type: ignore[attr-defined]
        with pytest.raises(asyncio.CancelledError):
            await call
        watch.release.set()

    run(main())
    pool.shutdown()
    assert watch.seen == [True]


def test_bad_input_is_refused_at_once() -> None:
    async def not_blocking() -> None:
        pass

    with pytest.raises(TypeError, match="not_blocking is a coroutine function"):
        offload.abandonable(not_blocking)
    with pytest.raises(TypeError, match="needs a callable to run in a thread, not int 3"):
        offload.abandonable(3)  # type: ignore[arg-type]
