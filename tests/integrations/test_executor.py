"""offload.Executor behaves as the standard library documents executors to behave.

Each test runs against ThreadPoolExecutor as well, so that any difference from the
standard library is a decision, not an accident.
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import math
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor, TimeoutError, wait
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import pytest

import offload

from ..support.polling import wait_until
from ..support.pools import ConcurrencyProbe, Gate, MakePool, assert_invariant
from ..support.scripts import run_script
from ..support.seams import IdleClock

ExecutorFactory = Callable[..., ThreadPoolExecutor]

setting: contextvars.ContextVar[str] = contextvars.ContextVar("setting", default="unset")


@pytest.fixture(params=["offload.Executor", "ThreadPoolExecutor"])
def make_executor(request: pytest.FixtureRequest, gate: Gate) -> Iterator[ExecutorFactory]:
    kind = offload.Executor if request.param == "offload.Executor" else ThreadPoolExecutor
    made: list[ThreadPoolExecutor] = []

    def make(*args: object, **kwargs: object) -> ThreadPoolExecutor:
        made.append(kind(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for executor in made:
        executor.shutdown(wait=False, cancel_futures=True)


def test_is_a_thread_pool_executor() -> None:
    executor = offload.Executor()
    assert isinstance(executor, ThreadPoolExecutor)
    assert executor._max_workers == offload.DEFAULT_MAX_THREADS
    executor.shutdown()


def test_submit_returns_results_and_exceptions(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=2)
    assert executor.submit(pow, 2, 10).result(timeout=10) == 1024
    assert executor.submit(dict, a=1).result(timeout=10) == {"a": 1}
    with pytest.raises(ZeroDivisionError):
        executor.submit(divmod, 1, 0).result(timeout=10)


def test_map_keeps_order_and_honours_timeout(make_executor: ExecutorFactory, gate: Gate) -> None:
    executor = make_executor(max_workers=4)
    assert list(executor.map(pow, [2, 3, 4], [2, 2, 2], chunksize=2)) == [4, 9, 16]
    release = gate()
    results = executor.map(lambda _: release.wait(), [1], timeout=0.01)
    with pytest.raises(TimeoutError):
        next(results)
    release.set()


def test_max_workers_bounds_running_calls(make_executor: ExecutorFactory, gate: Gate) -> None:
    executor = make_executor(max_workers=2)
    probe = ConcurrencyProbe(gate())
    futures = [executor.submit(probe.task) for _ in range(6)]
    probe.wait_inside(2)
    probe.release.set()
    assert not wait(futures, timeout=10).not_done
    assert probe.peak == 2


def test_shutdown_waits_refuses_new_work_and_may_repeat(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=2)
    futures = [executor.submit(pow, 2, n) for n in range(20)]
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(int)
    executor.shutdown()


def test_cancel_futures_cancels_the_pending_ones(make_executor: ExecutorFactory, gate: Gate) -> None:
    executor = make_executor(max_workers=1)
    release = gate()
    started = threading.Event()

    def first() -> None:
        started.set()
        release.wait()

    running = executor.submit(first)
    assert started.wait(10)
    pending = [executor.submit(int) for _ in range(5)]
    executor.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in pending)
    release.set()
    assert running.result(timeout=10) is None
    with pytest.raises(CancelledError):
        pending[0].result()


def test_a_cancelled_future_never_runs(make_executor: ExecutorFactory, gate: Gate) -> None:
    executor = make_executor(max_workers=1)
    release, started = gate(), threading.Event()
    ran: list[int] = []

    def first() -> None:
        started.set()
        release.wait()

    executor.submit(first)
    assert started.wait(10)
    queued = executor.submit(ran.append, 1)
    assert queued.cancel()
    release.set()
    executor.shutdown(wait=True)
    assert ran == []


def test_initializer_runs_once_per_thread(make_executor: ExecutorFactory) -> None:
    seen: list[str] = []
    executor = make_executor(max_workers=1, initializer=seen.append, initargs=("init",))
    for _ in range(5):
        executor.submit(int).result(timeout=10)
    assert seen == ["init"]


def test_a_failing_initializer_breaks_the_executor(make_executor: ExecutorFactory) -> None:
    def fail() -> None:
        raise ValueError("no connection")

    executor = make_executor(max_workers=1, initializer=fail)
    with pytest.raises(BrokenThreadPool):
        executor.submit(int).result(timeout=10)
    wait_until(lambda: _refuses(executor), what="the executor to refuse work")


def _refuses(executor: ThreadPoolExecutor) -> bool:
    try:
        executor.submit(int)
    except BrokenThreadPool:
        return True
    return False


def set_up_thread() -> None:
    decimal.getcontext().prec = 5
    setting.set("by the initializer")


def thread_state() -> tuple[int, str]:
    return decimal.getcontext().prec, setting.get()


def test_calls_run_in_the_context_the_initializer_set_up(
    make_executor: ExecutorFactory, idle_clock: IdleClock
) -> None:
    # ThreadPoolExecutor's calls run in their worker thread's own context: what the
    # initializer sets there (the decimal module's context is one of its variables) the
    # calls see, and what a call sets, the thread's next call sees. (idle_clock: the
    # offload pool's one thread must not time out between the calls.)
    executor = make_executor(max_workers=1, initializer=set_up_thread)
    assert executor.submit(thread_state).result(timeout=10) == (5, "by the initializer")
    executor.submit(setting.set, "by a call").result(timeout=10)
    assert executor.submit(thread_state).result(timeout=10) == (5, "by a call")
    assert thread_state() == (decimal.DefaultContext.prec, "unset")


def test_a_call_does_not_see_its_submitters_context(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=1)
    token = setting.set("by the submitter")
    try:
        assert executor.submit(setting.get).result(timeout=10) == "unset"
    finally:
        setting.reset(token)


def test_to_thread_carries_its_callers_context_itself(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=1)

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(executor)
        setting.set("by the task")
        return await asyncio.to_thread(setting.get)

    assert asyncio.run(main()) == "by the task"


def test_thread_name_prefix_names_the_threads(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=1, thread_name_prefix="files")
    name = executor.submit(lambda: threading.current_thread().name).result(timeout=10)
    assert name.startswith("files")


# Each wrong use of an executor, with whether offload's error must read as the standard
# library's word for word (the class's name aside) or only be of its type: where the
# standard library's message is an accident of its code, offload says what was wrong.
WRONG_USES: dict[str, tuple[Callable[[ExecutorFactory], object], bool]] = {
    "max_workers=0": (lambda make: make(max_workers=0), True),
    "max_workers=-1": (lambda make: make(max_workers=-1), True),
    "max_workers=-0.5": (lambda make: make(max_workers=-0.5), True),
    "max_workers='4'": (lambda make: make(max_workers="4"), False),
    "initializer=3": (lambda make: make(initializer=3), True),
    # From 3.14 ThreadPoolExecutor hands the keywords it does not know to its
    # prepare_context(), whose name its message gives; offload's names __init__().
    "an unknown keyword": (lambda make: make(workers=2), sys.version_info < (3, 14)),
    "too many arguments": (lambda make: make(2, "", None, (), None), True),
    "submit()": (lambda make: make().submit(), True),
    "submit(fn=...)": (lambda make: make().submit(fn=int), True),
    # ThreadPoolExecutor's future fails; offload refuses it at once.
    "submit(3)": (lambda make: make().submit(3).result(timeout=10), False),
    "submit after shutdown": (lambda make: _shut(make()).submit(int), True),
    "submit(3) after shutdown": (lambda make: _shut(make()).submit(3), True),
    "map of a non-iterable": (lambda make: make().map(int, 3), True),
    "map with timeout='1'": (lambda make: list(make().map(int, [1], timeout="1")), True),
    "map(3, ...)": (lambda make: list(make().map(3, [1])), False),
    "shutdown with 3 positional arguments": (lambda make: make().shutdown(True, True), True),
    "shutdown with an unknown keyword": (lambda make: make().shutdown(now=True), True),
}


def _shut(executor: ThreadPoolExecutor) -> ThreadPoolExecutor:
    executor.shutdown()
    return executor


@pytest.mark.parametrize("use", sorted(WRONG_USES))
def test_wrong_uses_fail_as_with_thread_pool_executor(use: str) -> None:
    wrong_use, same_words = WRONG_USES[use]
    ours, theirs = _error(wrong_use, offload.Executor), _error(wrong_use, ThreadPoolExecutor)
    assert ours[0] is theirs[0]
    if same_words:
        assert ours[1] == theirs[1]


def _error(wrong_use: Callable[[ExecutorFactory], object], kind: ExecutorFactory) -> tuple[type, str]:
    """The type and message of what ``wrong_use`` of a ``kind`` raises, its name made neutral."""
    made: list[ThreadPoolExecutor] = []

    def make(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        made.append(kind(*args, **kwargs))
        return made[-1]

    try:
        wrong_use(make)
    except Exception as error:
        return type(error), str(error).replace(f"{kind.__name__}.", "<executor>.")
    finally:
        for executor in made:
            executor.shutdown()
    pytest.fail(f"{kind.__name__} raised nothing")


class TestOffloadSpecific:
    def test_the_pool_invariant_holds_through_the_executor(self, gate: Gate) -> None:
        release = gate()
        with offload.Executor(max_workers=8) as executor:
            barrier = threading.Barrier(8, timeout=10)
            futures = [executor.submit(barrier.wait) for _ in range(8)]
            assert not wait(futures, timeout=10).not_done
            wait_until(lambda: executor.pool.stats().threads == 1, what="all but one thread to leave")
            s = assert_invariant(executor.pool)
            assert (s.peak_threads, s.idle) == (8, 1)
            release.set()
        assert executor.pool.stats().threads == 0

    def test_waiting_from_its_own_call_is_refused_on_a_shared_pool(self, make_pool: MakePool) -> None:
        # An owning Executor's pool refuses; one on a shared pool (what install() makes)
        # waited for ever, its own call among those it waited for.
        executor = offload.Executor(pool=make_pool())
        with pytest.raises(RuntimeError, match="would wait for itself"):
            executor.submit(executor.shutdown).result(timeout=10)
        executor.submit(executor.shutdown, wait=False).result(timeout=10)
        with pytest.raises(RuntimeError, match="after shutdown"):
            executor.submit(int)

    def test_executors_sharing_a_thread_keep_their_contexts_apart(self, make_pool: MakePool) -> None:
        # A pool thread runs the calls of every executor on its pool, and offload()'s:
        # each executor's calls see only what its own initializer and calls set.
        pool = make_pool(max_threads=1, idle_timeout=math.inf)
        first = offload.Executor(pool=pool, initializer=setting.set, initargs=("first",))
        second = offload.Executor(pool=pool, initializer=setting.set, initargs=("second",))
        plain = offload.Executor(pool=pool)

        def seen() -> tuple[int, str]:
            return threading.get_ident(), setting.get()

        async def offloaded() -> tuple[int, str]:
            return await pool.run(seen)

        calls = [executor.submit(seen).result(timeout=10) for executor in (first, second, plain, first)]
        calls.append(asyncio.run(offloaded()))
        assert len({thread for thread, _ in calls}) == 1
        assert [value for _, value in calls] == ["first", "second", "unset", "first", "unset"]

    def test_a_shared_pool_stays_open_after_shutdown(self, make_pool: MakePool) -> None:
        pool = make_pool()
        executor = offload.Executor(pool=pool)
        assert executor.submit(int, "6").result(timeout=10) == 6
        executor.shutdown(wait=True)
        assert not pool.closed
        with pytest.raises(TypeError, match="either pool= or max_workers"):
            offload.Executor(max_workers=2, pool=pool)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_workers": "x"}, "max_workers must be an int or None, not str"),
            # ThreadPoolExecutor takes these, a float as the int above it.
            ({"max_workers": 2.5}, "max_workers must be an int or None, not float"),
            ({"thread_name_prefix": 3}, "Pool name must be a non-empty str, not 3"),
            ({"pool": 3}, r"pool must be an offload\.Pool, not int"),
        ],
    )
    def test_bad_arguments_are_named(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(TypeError, match=message):
            offload.Executor(**kwargs)


@pytest.mark.parametrize("kind", ["offload.Executor", "ThreadPoolExecutor"])
def test_a_call_submitted_as_the_interpreter_exits_fails_as_with_thread_pool_executor(kind: str) -> None:
    # From an atexit function, which runs once exit has begun: code run there catches this
    # error by its type and words (CPython's test_submit_after_interpreter_shutdown).
    result = run_script(f"""
        import atexit
        from concurrent.futures import ThreadPoolExecutor

        import offload

        @atexit.register
        def submit_at_exit():
            try:
                executor.submit(id, None)
            except RuntimeError as error:
                print(type(error).__name__, error)

        executor = {kind}(5)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "RuntimeError cannot schedule new futures after interpreter shutdown\n"
