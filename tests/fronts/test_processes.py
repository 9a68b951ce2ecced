"""offload.ProcessPool: calls in worker processes, with the errors users meet made clear.

The functions sent to the workers are in tests/remote_work.py. The workers start with
"spawn", so each pool costs a fraction of a second: the tests that leave the pool
working share one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

import offload

from ..support import remote_work
from ..support.loops import AnyioRun, Runner
from ..support.polling import wait_until
from ..support.scripts import run_script
from ..support.seams import executor_future, gather_in_one_wakeup

MakeProcessPool = Callable[..., offload.ProcessPool]

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def processes() -> Iterator[offload.ProcessPool]:
    """Two worker processes, started before the first test that uses them, so that its
    thread check finds the executor's own threads already there."""
    with offload.ProcessPool(2) as pool:

        async def start_both_workers() -> None:
            await asyncio.gather(pool.run(abs, -1), pool.run(abs, -2))

        asyncio.run(start_both_workers())
        yield pool


@pytest.fixture
def process_gate() -> Iterator[Any]:
    """What ``remote_work.held()`` calls wait on until the test releases it; released at
    teardown too, so that a failing test leaves no worker process waiting."""
    gate = SPAWN.Semaphore(0)
    yield gate
    gate.release()


@pytest.fixture
def held_pool(process_gate: Any) -> Iterator[MakeProcessPool]:
    """Makes pools whose workers run ``remote_work.held()`` until ``process_gate`` is set;
    shut down at teardown (the thread and process checks then wait for them)."""
    pools: list[offload.ProcessPool] = []

    def make(max_workers: int) -> offload.ProcessPool:
        pools.append(
            offload.ProcessPool(max_workers, initializer=remote_work.hold_until, initargs=(process_gate,))
        )
        return pools[-1]

    yield make
    process_gate.release()
    for pool in pools:
        pool.shutdown(wait=True)


def test_results_and_exceptions_with_the_workers_traceback(
    run: Runner[None], processes: offload.ProcessPool
) -> None:
    async def main() -> None:
        assert await processes.run(os.getpid) != os.getpid()
        assert await processes(divmod, 7, 2) == (3, 1)
        with pytest.raises(ValueError, match="in the worker") as info:
            await processes.run(remote_work.fail, "in the worker")
        # The executor chains the worker's traceback, as text.
        assert 'remote_work.py", line' in str(info.value.__cause__)
        assert "raise ValueError(message)" in str(info.value.__cause__)

    run(main())


def local_function_maker() -> Callable[[], int]:
    def local() -> int:
        return 1

    return local


@pytest.mark.parametrize(
    ("fn", "name"),
    [(lambda: 1, "<lambda>"), (local_function_maker(), "local_function_maker.<locals>.local")],
    ids=["lambda", "local function"],
)
def test_a_function_that_cannot_be_pickled_gets_an_error_that_says_what_to_do(
    run: Runner[None], processes: offload.ProcessPool, fn: Callable[[], int], name: str
) -> None:
    async def main() -> None:
        with pytest.raises(TypeError) as info:
            await processes.run(fn)
        assert str(info.value) == (
            f"{name} cannot be sent to a worker process: define it at module level "
            "(lambdas and local functions cannot be sent to another process)"
        )
        # The executor's own error, chained; its type and wording vary by Python version.
        assert isinstance(info.value.__cause__, AttributeError | pickle.PicklingError)

    run(main())


def test_an_argument_that_cannot_be_pickled_keeps_the_executors_error(
    run: Runner[None], processes: offload.ProcessPool
) -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"cannot pickle '_thread\.lock' object"):
            await processes.run(remote_work.touch, threading.Lock())

    run(main())


def test_a_dead_worker_fails_the_calls_in_the_pool_and_later_calls_get_new_workers(
    run: Runner[None], held_pool: MakeProcessPool
) -> None:
    pool = held_pool(2)

    async def main() -> None:
        broken = pool._executor
        held = pool.run(remote_work.held)  # in the pool, and never finishes by itself
        dying = pool.run(remote_work.die)
        for call in (dying, held):
            with pytest.raises(offload.WorkerLostError, match=r"a worker process died while (die|held)\(\)"):
                await call
            assert isinstance(call.exception().__cause__, BrokenProcessPool)
        assert await pool.run(abs, -7) == 7
        assert pool._executor is not broken

    run(main())


def test_a_queued_call_that_is_cancelled_never_runs(
    run: Runner[None], held_pool: MakeProcessPool, process_gate: Any, tmp_path: Path
) -> None:
    pool = held_pool(1)

    async def main() -> None:
        held = pool.run(remote_work.held)
        sent_ahead = pool.run(remote_work.touch, tmp_path / "sent ahead")
        pool.run(remote_work.touch, tmp_path / "next")  # sent ahead or not: not looked at
        queued = pool.run(remote_work.touch, tmp_path / "queued")
        # The executor sends calls to the worker before it is free: the running one and
        # up to max_workers + 1 more (ProcessPool's docstring). The one after those
        # waits in the executor, where it can be cancelled.
        wait_until(
            lambda: executor_future(pool, sent_ahead).running(), what="the executor to send a call ahead"
        )
        assert not executor_future(pool, queued).running()
        queued.cancel()
        sent_ahead.cancel()  # its awaiter is released at once; the call runs regardless
        process_gate.release()
        await held
        for call in (queued, sent_ahead):
            with pytest.raises(asyncio.CancelledError):
                await call

    run(main())
    pool.shutdown(wait=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["next", "sent ahead"]


def test_results_finishing_together_wake_the_loop_once(
    run: Runner[None], processes: offload.ProcessPool, drain_sizes: list[int]
) -> None:
    n = 16

    async def main() -> None:
        calls = [processes.run(abs, -i) for i in range(n)]
        assert await gather_in_one_wakeup(calls, drain_sizes) == list(range(n))

    run(main())


def test_shutdown_stops_the_workers_and_refuses_later_calls(run: Runner[None]) -> None:
    async def main() -> None:
        before = set(multiprocessing.active_children())  # the shared pool's, if it is started
        with offload.ProcessPool(1) as pool:
            assert await pool.run(abs, -1) == 1
            assert len(set(multiprocessing.active_children()) - before) == 1
        assert set(multiprocessing.active_children()) == before
        with pytest.raises(offload.PoolClosedError, match=r"<offload\.ProcessPool closed calls=0 on"):
            pool.run(abs, -1)

    run(main())


def test_runs_under_anyio(anyio_run: AnyioRun, processes: offload.ProcessPool) -> None:
    async def main() -> None:
        assert await processes.run(abs, -3) == 3
        with pytest.raises(ValueError, match="under anyio"):
            await processes.run(remote_work.fail, "under anyio")

    anyio_run(main)


UNGUARDED_SCRIPT = """\
import asyncio

import offload

# At module level, without `if __name__ == "__main__":`: each worker runs this too.
pool = offload.ProcessPool(1)


async def main():
    try:
        await pool.run(abs, -1)
    except offload.WorkerLostError as error:
        print(error)


asyncio.run(main())
pool.shutdown()
"""


def test_a_pool_run_from_an_unguarded_main_module_gets_an_error_that_says_so(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    # Run as a file: "spawn" re-imports the main module in the workers only when it has one.
    result = run_script(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a worker process died while abs() was in the pool"), result.stdout
    assert 'if __name__ == "__main__":' in result.stdout
    assert "importing the main module again" in result.stdout


@pytest.mark.parametrize("max_workers", ["x", 1.5, True])
def test_max_workers_of_the_wrong_type_fails_at_once(max_workers: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"^max_workers must be an int or None, not {type(max_workers).__name__}$"
    ):
        offload.ProcessPool(max_workers)


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_not_positive_fails_at_once(max_workers: int) -> None:
    with pytest.raises(ValueError, match=rf"^max_workers must be at least 1, not {max_workers}$"):
        offload.ProcessPool(max_workers)
