"""``offload.install_anyio()``: anyio's ``to_thread.run_sync`` on an offload pool, on
asyncio, uvloop and trio, with anyio's semantics (limiters, cancellation, the calls back
into the loop), and a clear refusal of an anyio it does not know."""

from __future__ import annotations

import contextvars
import functools
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio import from_thread, to_thread

import offload

from ..support.loops import AnyioRun
from ..support.polling import until, wait_until
from ..support.pools import Gate, MakePool, assert_invariant
from ..support.scripts import run_exiting


@pytest.fixture
def installed(pool: offload.Pool) -> Iterator[offload.Pool]:
    """install_anyio() on a fresh pool for the test, undone after it."""
    offload.install_anyio(pool)
    yield pool
    offload.uninstall_anyio()


def test_calls_run_on_the_pool(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    async def main() -> str:
        assert await to_thread.run_sync(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            await to_thread.run_sync(divmod, 1, 0)
        return await to_thread.run_sync(lambda: threading.current_thread().name)

    assert anyio_run(main).startswith("test-1:test_calls_run_on_the_pool.<locals>.")
    assert installed.stats().completed == 3


def test_calls_back_into_the_loop_work(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    async def add(a: int, b: int) -> int:
        await anyio.sleep(0)
        return a + b

    def in_thread() -> tuple[int, int]:
        return from_thread.run(add, 1, 2), from_thread.run_sync(pow, 2, 5)

    async def main() -> None:
        assert await to_thread.run_sync(in_thread) == (3, 32)

    anyio_run(main)


def test_contextvars_reach_the_call(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    async def main() -> None:
        var.set("from the task")
        assert await to_thread.run_sync(var.get) == "from the task"

    anyio_run(main)


def test_a_shielded_call_sees_its_host_cancelled_and_finishes(
    anyio_run: AnyioRun, installed: offload.Pool, gate: Gate
) -> None:
    started, release = gate(), gate()
    seen: list[str] = []

    def call() -> None:
        started.set()
        release.wait()
        try:
            from_thread.check_cancelled()
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    async def canceller(scope: anyio.CancelScope) -> None:
        await to_thread.run_sync(started.wait)
        scope.cancel()
        release.set()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(canceller, tasks.cancel_scope)
            await to_thread.run_sync(call)  # waits for the call, then is cancelled
        assert seen == [anyio.get_cancelled_exc_class().__name__]

    anyio_run(main)


def test_an_abandoned_call_still_queued_never_runs(
    anyio_run: AnyioRun, make_pool: MakePool, gate: Gate
) -> None:
    pool = make_pool(max_threads=1)
    offload.install_anyio(pool)
    release = gate()
    ran: list[str] = []

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(to_thread.run_sync, release.wait)
            await until(lambda: pool.stats().busy == 1)
            with anyio.move_on_after(0.01) as scope:
                await to_thread.run_sync(ran.append, "queued", abandon_on_cancel=True)
            assert scope.cancelled_caught
            release.set()

    try:
        anyio_run(main)
    finally:
        offload.uninstall_anyio()
    assert ran == []
    assert pool.stats().completed == 1


def test_a_call_trio_abandoned_does_not_return_to_the_finished_run(make_pool: MakePool, gate: Gate) -> None:
    # Trio gives up on the call at the cancel; the run ends before the call does, and
    # the thread that ran it must not stay counted as returning to that run.
    pool = make_pool(idle_timeout=math.inf)
    offload.install_anyio(pool)
    started, release = gate(), gate()

    def blocked() -> None:
        started.set()
        release.wait()

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(functools.partial(to_thread.run_sync, blocked, abandon_on_cancel=True))
                await until(started.is_set)
                scope.cancel()

    try:
        anyio.run(main, backend="trio")
    finally:
        offload.uninstall_anyio()
    release.set()
    wait_until(lambda: pool.stats().busy == 0, what="the abandoned call to finish")
    stats = assert_invariant(pool)
    assert (stats.returning, stats.idle, stats.threads) == (0, 1, 1)


def test_trio_keeps_its_own_default_limiter(make_pool: MakePool) -> None:
    # anyio's calls get the pool's max_threads as tokens; plain trio.to_thread keeps 40.
    import trio

    offload.install_anyio(make_pool(max_threads=7))

    async def tokens() -> tuple[float, float]:
        await to_thread.run_sync(int)
        return (
            to_thread.current_default_thread_limiter().total_tokens,
            trio.to_thread.current_default_thread_limiter().total_tokens,
        )

    try:
        assert anyio.run(tokens, backend="trio") == (7, 40)
    finally:
        offload.uninstall_anyio()


def test_exit_completes_a_call_whose_host_task_was_cancelled_natively() -> None:
    # abandon_on_cancel=False, anyio's default (FastAPI's def endpoints, anyio.Path):
    # asyncio.run() cancels the host task at its end; the write completes, as it does
    # on anyio's own threads.
    assert run_exiting(
        """
        import asyncio
        import anyio

        offload.install_anyio()

        async def background():
            await anyio.to_thread.run_sync(write)

        async def main():
            asyncio.create_task(background())
            await asyncio.to_thread(started.wait)

        asyncio.run(main())
        """
    ) == ("cancelled: True - written\n", "")


def test_exit_leaves_a_call_trio_abandoned() -> None:
    # As anyio on trio as shipped: trio's threads are daemon threads, and a call trio
    # abandoned holds up nothing.
    assert run_exiting(
        """
        import functools
        import anyio

        offload.install_anyio()

        def wait_for_ever():
            started.set()
            threading.Event().wait()

        async def main():
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(
                        functools.partial(anyio.to_thread.run_sync, wait_for_ever, abandon_on_cancel=True)
                    )
                    await anyio.to_thread.run_sync(started.wait)
                    scope.cancel()
            print("abandoned", flush=True)

        anyio.run(main, backend="trio")
        """
    ) == ("abandoned\n", "")


def test_a_closed_pool_is_refused_at_install() -> None:
    closed = offload.Pool(name="closed")
    closed.shutdown()
    with pytest.raises(
        offload.PoolClosedError, match=r"install_anyio\(\) needs an open pool; .* make a new one"
    ):
        offload.install_anyio(closed)


def test_a_limiter_bounds_the_calls_running(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002)
        with lock:
            running -= 1

    async def main() -> None:
        limiter = anyio.CapacityLimiter(2)
        async with anyio.create_task_group() as tasks:
            for _ in range(10):
                tasks.start_soon(lambda: to_thread.run_sync(call, limiter=limiter))

    anyio_run(main)
    assert most <= 2
    assert installed.stats().completed == 10


def test_the_default_limiter_holds_the_pools_max_threads(anyio_run: AnyioRun, make_pool: MakePool) -> None:
    offload.install_anyio(make_pool(max_threads=7))

    async def main() -> tuple[float, float]:
        first = to_thread.current_default_thread_limiter().total_tokens
        to_thread.current_default_thread_limiter().total_tokens = 3  # the program's own choice
        await to_thread.run_sync(int)
        return first, to_thread.current_default_thread_limiter().total_tokens

    async def tokens() -> float:
        return to_thread.current_default_thread_limiter().total_tokens

    try:
        assert anyio_run(main) == (7, 3)
        offload.install_anyio(tokens=40)
        assert anyio_run(tokens) == 40
    finally:
        offload.uninstall_anyio()


def test_tasks_calling_in_a_row_start_no_thread(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    # anyio yields twice before it submits (its checkpoint, then the limiter's): the
    # window of a returning thread stays open for that, so the next call takes it back.
    tasks, calls = 4, 100
    all_in = threading.Barrier(tasks, timeout=10)

    async def in_a_row() -> None:
        await to_thread.run_sync(all_in.wait)
        for _ in range(calls - 1):
            await to_thread.run_sync(threading.get_ident)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(tasks):
                group.start_soon(in_a_row)
        await until(lambda: installed.stats().returning + installed.stats().starting == 0)

    anyio_run(main)
    s = assert_invariant(installed)
    assert s.completed == tasks * calls
    assert s.spawned <= tasks + tasks * calls // 100, s


def test_a_coroutine_function_is_refused_at_the_call(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    async def not_blocking() -> None:
        pass

    async def main() -> None:
        with pytest.raises(TypeError, match="coroutine function"):
            await to_thread.run_sync(not_blocking)

    anyio_run(main)
    assert installed.stats().completed == 0


def test_stop_iteration_becomes_anyios_runtime_error(anyio_run: AnyioRun, installed: offload.Pool) -> None:
    def stop() -> None:
        raise StopIteration

    async def main() -> None:
        with pytest.raises(RuntimeError) as raised:
            await to_thread.run_sync(stop)
        assert isinstance(raised.value.__cause__, StopIteration)

    anyio_run(main)


def test_installing_twice_changes_the_pool_and_uninstall_restores_anyio(make_pool: MakePool) -> None:
    from anyio._backends._asyncio import AsyncIOBackend

    anyios_own = AsyncIOBackend.__dict__["run_sync_in_worker_thread"]
    first, second = make_pool(name="first"), make_pool(name="second")
    offload.install_anyio(first)
    offload.install_anyio(second)
    try:
        assert anyio.run(to_thread.run_sync, lambda: threading.current_thread().name).startswith("second-")
    finally:
        offload.uninstall_anyio()
    offload.uninstall_anyio()  # a no-op once undone
    assert AsyncIOBackend.__dict__["run_sync_in_worker_thread"] is anyios_own
    assert "offload" not in anyio.run(to_thread.run_sync, lambda: threading.current_thread().name)
    assert first.stats().completed == 0


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("3.7.1", "supports anyio 4.4 up to"),
        ("5.0.0", "supports anyio 4.4 up to"),
        ("4.3.0", "anyio 4.3.0 is"),
        ("main", "anyio main is"),
    ],
)
def test_an_anyio_version_it_does_not_know_is_refused(
    monkeypatch: pytest.MonkeyPatch, version: str, message: str
) -> None:
    from anyio._backends._asyncio import AsyncIOBackend

    anyios_own = AsyncIOBackend.__dict__["run_sync_in_worker_thread"]
    monkeypatch.setattr("importlib.metadata.version", lambda name: version)
    with pytest.raises(RuntimeError, match=message):
        offload.install_anyio()
    assert AsyncIOBackend.__dict__["run_sync_in_worker_thread"] is anyios_own


def test_a_missing_internal_is_named_and_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyio._backends._asyncio import AsyncIOBackend
    from anyio._core import _eventloop

    anyios_own = AsyncIOBackend.__dict__["run_sync_in_worker_thread"]
    monkeypatch.delattr(_eventloop, "claim_worker_thread")
    with pytest.raises(RuntimeError, match=r"claim_worker_thread.*nothing was changed"):
        offload.install_anyio()
    assert AsyncIOBackend.__dict__["run_sync_in_worker_thread"] is anyios_own


def test_a_changed_signature_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyio._backends._asyncio import AsyncIOBackend

    async def other(cls: Any, func: Any, args: Any, *, cancellable: bool = False) -> None:
        pass

    monkeypatch.setattr(AsyncIOBackend, "run_sync_in_worker_thread", classmethod(other))
    with pytest.raises(RuntimeError, match=r"run_sync_in_worker_thread\('func', 'args', 'cancellable'\)"):
        offload.install_anyio()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"pool": 3}, TypeError, "pool must be an offload.Pool, not int"),
        ({"tokens": "40"}, TypeError, "tokens must be an int or None, not str"),
        ({"tokens": True}, TypeError, "tokens must be an int or None, not bool"),
        ({"tokens": 0}, ValueError, "tokens must be at least 1, not 0"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        offload.install_anyio(**kwargs)
