"""offload.Executor behaves as the standard library documents executors to behave.

Each test runs against ThreadPoolExecutor as well, so that any difference from the
standard library is a decision, not an accident.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor, TimeoutError, wait
from concurrent.futures.thread import BrokenThreadPool
from typing import Any

import pytest

import offload

from ..support.polling import wait_until
from ..support.pools import ConcurrencyProbe, Gate, MakePool, assert_invariant

ExecutorFactory = Callable[..., ThreadPoolExecutor]


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


def test_thread_name_prefix_names_the_threads(make_executor: ExecutorFactory) -> None:
    executor = make_executor(max_workers=1, thread_name_prefix="files")
    name = executor.submit(lambda: threading.current_thread().name).result(timeout=10)
    assert name.startswith("files")


@pytest.mark.parametrize(
    ("kwargs", "error"), [({"max_workers": 0}, ValueError), ({"initializer": 3}, TypeError)]
)
def test_bad_arguments(
    make_executor: ExecutorFactory, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make_executor(**kwargs)


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
            ({"pool": 3}, r"pool must be an offload\.Pool, not int"),
        ],
    )
    def test_bad_arguments_are_named(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(TypeError, match=message):
            offload.Executor(**kwargs)
