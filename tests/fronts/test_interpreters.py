"""offload.InterpreterPool: calls in subinterpreters of the test process (Python 3.14+).

The functions sent are in tests/support/remote_work.py. A call that must wait for the
test waits on a ``concurrent.interpreters`` Queue, which reaches a subinterpreter where a
threading.Event cannot; the test learns that a call started from another Queue. Each
test makes its own pool and checks that no interpreter outlives it (threads: conftest).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import offload

from ..support import remote_work
from ..support.loops import AnyioRun, Runner
from ..support.seams import executor_future, gather_in_one_wakeup

NEEDS_3_14 = "needs Python 3.14+: concurrent.futures.InterpreterPoolExecutor"
needs_3_14 = pytest.mark.skipif(sys.version_info < (3, 14), reason=NEEDS_3_14)

MakePool = Callable[..., offload.InterpreterPool]
MakeQueue = Callable[[], Any]


@pytest.fixture
def interpreters() -> Any:
    """``concurrent.interpreters``, imported by name: mypy checks the tests as 3.11's."""
    return importlib.import_module("concurrent.interpreters")


@pytest.fixture
def queue(interpreters: Any) -> Iterator[MakeQueue]:
    """Makes Queues for calls to wait on; each gets an item at teardown, so that a failing
    test releases its waiting calls (``remote_work.wait_for`` passes it on)."""
    made: list[Any] = []

    def make() -> Any:
        made.append(interpreters.create_queue())
        return made[-1]

    yield make
    for gate in made:
        gate.put("teardown")


@pytest.fixture
def make_pool(interpreters: Any, queue: MakeQueue) -> Iterator[MakePool]:
    """Makes pools that are shut down at teardown (after the queues release their calls),
    and checks that every interpreter they started has ended with them."""
    before = {interpreter.id for interpreter in interpreters.list_all()}
    pools: list[offload.InterpreterPool] = []

    def make(*args: Any, **kwargs: Any) -> offload.InterpreterPool:
        pools.append(offload.InterpreterPool(*args, **kwargs))
        return pools[-1]

    yield make
    for pool in pools:
        pool.shutdown(wait=True)
    assert {interpreter.id for interpreter in interpreters.list_all()} == before


def started_ids(started: Any, n: int) -> set[int]:
    """The ids of the interpreters of ``n`` calls of ``report_and_wait``, as each starts."""
    return {started.get(timeout=10) for _ in range(n)}


@needs_3_14
def test_results_and_exceptions_keep_their_type_and_the_interpreters_traceback(
    run: Runner[None], make_pool: MakePool
) -> None:
    pool = make_pool(1)

    async def main() -> None:
        assert await pool.run(remote_work.interpreter_id) != 0  # not the main interpreter
        assert await pool(divmod, 7, 2) == (3, 1)  # calling the front is run()
        assert await pool.run(dict, a=1) == {"a": 1}
        with pytest.raises(ValueError, match="in the interpreter") as info:
            await pool.run(remote_work.fail, "in the interpreter")
        # The executor chains the interpreter's traceback, as text.
        assert type(info.value.__cause__).__name__ == "ExecutionFailed"
        assert 'remote_work.py", line' in str(info.value.__cause__)
        assert "raise ValueError(message)" in str(info.value.__cause__)

    run(main())


def closure_maker() -> Callable[[], int]:
    one = 1
    return lambda: one


@needs_3_14
def test_a_stateless_lambda_runs_and_a_closure_gets_an_error_that_says_what_to_do(
    run: Runner[None], make_pool: MakePool, interpreters: Any
) -> None:
    pool = make_pool(1)

    async def main() -> None:
        # A lambda that reads no global and closes over nothing travels as code.
        assert await pool.run(lambda x: x * 2, 21) == 42
        with pytest.raises(TypeError) as info:
            await pool.run(closure_maker())
        assert str(info.value) == (
            "closure_maker.<locals>.<lambda> cannot be sent to a subinterpreter: define it at "
            "module level (a lambda or local function can be sent only if it reads no global "
            "and closes over nothing)"
        )
        assert isinstance(info.value.__cause__, interpreters.NotShareableError)

    run(main())


@needs_3_14
def test_an_argument_that_cannot_be_shared_keeps_the_executors_error(
    run: Runner[None], make_pool: MakePool, interpreters: Any
) -> None:
    pool = make_pool(1)

    async def main() -> None:
        with pytest.raises(interpreters.NotShareableError, match="does not support cross-interpreter data"):
            await pool.run(remote_work.touch, threading.Lock())

    run(main())


@needs_3_14
def test_module_level_state_is_the_interpreters_own(
    run: Runner[None], make_pool: MakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_work, "counter", 100)
    # The initializer runs in each interpreter as it starts, on that interpreter's module.
    pool = make_pool(1, initializer=remote_work.bump)

    async def main() -> None:
        assert await pool.run(remote_work.bump) == 2
        assert await pool.run(remote_work.bump) == 3  # the same interpreter, its own counter
        assert remote_work.counter == 100

    run(main())


@needs_3_14
def test_a_module_the_program_put_on_sys_path_is_found_in_the_interpreters(
    run: Runner[None], make_pool: MakePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new interpreter starts with the sys.path Python computes at start-up, without
    # the program's changes (pytest's, here): the pool gives it the program's.
    (tmp_path / "placed_here.py").write_text("def answer():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    placed_here = importlib.import_module("placed_here")
    monkeypatch.delitem(sys.modules, "placed_here")
    pool = make_pool(1)

    async def main() -> None:
        assert await pool.run(placed_here.answer) == 42

    run(main())


@needs_3_14
@pytest.mark.parametrize("cancel", ["by its awaiter", "by shutdown(cancel_queued=True)"])
def test_a_queued_call_that_is_cancelled_never_runs(
    run: Runner[None], make_pool: MakePool, queue: MakeQueue, tmp_path: Path, cancel: str
) -> None:
    pool = make_pool(1)
    started, gate = queue(), queue()

    async def main() -> None:
        running = pool.run(remote_work.report_and_wait, started, gate)
        started_ids(started, 1)  # running: the one interpreter is taken
        queued = pool.run(remote_work.touch, tmp_path / "queued")
        executor_future_of_it = executor_future(pool, queued)
        assert not executor_future_of_it.running()
        if cancel == "by its awaiter":
            queued.cancel()
        else:
            pool.shutdown(wait=False, cancel_queued=True)
        assert executor_future_of_it.cancelled()
        gate.put("go")
        assert await running != 0
        with pytest.raises(asyncio.CancelledError):
            await queued

    run(main())
    pool.shutdown(wait=True)
    assert list(tmp_path.iterdir()) == []


@needs_3_14
def test_at_most_max_workers_interpreters_run_calls_at_once(
    run: Runner[None], make_pool: MakePool, queue: MakeQueue, interpreters: Any
) -> None:
    pool = make_pool(2)
    started, gate = queue(), queue()
    before = len(interpreters.list_all())

    async def main() -> None:
        calls = [pool.run(remote_work.report_and_wait, started, gate) for _ in range(3)]
        first_two = started_ids(started, 2)
        # Both interpreters are taken: the third call waits in the executor's queue.
        assert not executor_future(pool, calls[2]).running()
        assert len(interpreters.list_all()) == before + 2
        gate.put("go")
        ids = await asyncio.gather(*calls)
        assert set(ids) == first_two  # the third ran in one of the two

    run(main())


@needs_3_14
def test_results_finishing_together_wake_the_loop_once(
    run: Runner[None], make_pool: MakePool, drain_sizes: list[int]
) -> None:
    pool = make_pool(2)
    n = 8

    async def main() -> None:
        calls = [pool.run(abs, -i) for i in range(n)]
        assert await gather_in_one_wakeup(calls, drain_sizes) == list(range(n))

    run(main())


@needs_3_14
def test_async_with_waits_for_the_calls_and_ends_the_interpreters(
    run: Runner[None], interpreters: Any, queue: MakeQueue
) -> None:
    before = {interpreter.id for interpreter in interpreters.list_all()}
    started, gate = queue(), queue()

    async def main() -> None:
        async with offload.InterpreterPool(2) as pool:
            running = pool.run(remote_work.report_and_wait, started, gate)
            started_ids(started, 1)
            gate.put("go")  # the block's exit waits for it, while the loop runs on
        assert running.done()
        assert await running != 0
        with pytest.raises(offload.PoolClosedError, match=r"<offload\.InterpreterPool closed calls=0 on"):
            pool.run(abs, -1)

    run(main())
    assert {interpreter.id for interpreter in interpreters.list_all()} == before


@needs_3_14
def test_runs_under_anyio(anyio_run: AnyioRun, make_pool: MakePool) -> None:
    pool = make_pool(1)

    async def main() -> None:
        assert await pool.run(abs, -3) == 3
        with pytest.raises(ValueError, match="under anyio"):
            await pool.run(remote_work.fail, "under anyio")

    anyio_run(main)


@needs_3_14
@pytest.mark.parametrize("max_workers", ["x", 1.5, True])
def test_max_workers_of_the_wrong_type_fails_at_once(max_workers: Any) -> None:
    with pytest.raises(
        TypeError, match=rf"^max_workers must be an int or None, not {type(max_workers).__name__}$"
    ):
        offload.InterpreterPool(max_workers)


@needs_3_14
@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_not_positive_fails_at_once(max_workers: int) -> None:
    with pytest.raises(ValueError, match=rf"^max_workers must be at least 1, not {max_workers}$"):
        offload.InterpreterPool(max_workers)


@needs_3_14
def test_an_initializer_that_is_not_callable_fails_at_once() -> None:
    with pytest.raises(TypeError, match=r"^initializer must be callable, not int$"):
        offload.InterpreterPool(1, initializer=1)  # type: ignore[arg-type]


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="Python 3.14+ has InterpreterPoolExecutor")
def test_before_python_3_14_it_says_which_python_it_needs() -> None:
    with pytest.raises(RuntimeError) as info:
        offload.InterpreterPool()
    assert str(info.value) == (
        "offload.InterpreterPool needs Python 3.14 or later (for "
        "concurrent.futures.InterpreterPoolExecutor); this is Python "
        f"{sys.version_info.major}.{sys.version_info.minor}: use offload.ProcessPool"
    )
