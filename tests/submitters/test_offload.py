"""What a caller of offload() sees: results, errors, context, cancellation, names."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import traceback
import weakref
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest

import offload

from ..support.loops import Runner
from ..support.polling import awaited, wait_until
from ..support.pools import Gate, MakePool, assert_invariant, start_blocker

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_offload_returns_the_result_from_another_thread(
    run: Runner[None], default_pool: offload.Pool
) -> None:
    async def main() -> None:
        assert await offload.offload(sum, [1, 2, 3]) == 6
        assert await offload.offload(threading.get_ident) != threading.get_ident()
        assert await offload.offload(dict, a=1, fn=2) == {"a": 1, "fn": 2}  # fn is positional-only
        assert default_pool.stats().completed == 3

    run(main())


def test_set_default_pool_swaps_and_returns_the_previous(make_pool: MakePool) -> None:
    fresh = make_pool()
    previous = offload.set_default_pool(fresh)
    try:
        assert offload.default_pool() is fresh
    finally:
        assert offload.set_default_pool(previous) is fresh
    with pytest.raises(TypeError, match=r"needs an offload\.Pool, not str"):
        offload.set_default_pool("pool")  # type: ignore[arg-type]
    closed = make_pool()
    closed.shutdown()
    with pytest.raises(offload.PoolClosedError, match="needs an open pool"):
        offload.set_default_pool(closed)
    assert offload.default_pool() is previous


def test_context_is_copied_into_the_call(run: Runner[None], pool: offload.Pool) -> None:
    def read_and_write() -> str:
        seen = request_id.get()
        request_id.set("changed in thread")
        return seen

    async def main() -> None:
        request_id.set("req-42")
        assert await pool.run(read_and_write) == "req-42"
        assert request_id.get() == "req-42"

    run(main())


def _fail(message: str) -> NoReturn:
    raise ValueError(message)


def test_exceptions_reach_the_awaiter_with_their_traceback(run: Runner[None], pool: offload.Pool) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="bad row") as info:
            await pool.run(_fail, "bad row")
        assert "_fail" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
        assert await pool.run(int, "1") == 1  # the thread survived

    run(main())


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, MemoryError, GeneratorExit])
def test_base_exceptions_reach_the_awaiter_and_spare_the_pool(
    run: Runner[None], pool: offload.Pool, exc_type: type[BaseException]
) -> None:
    def raise_it() -> NoReturn:
        raise exc_type("from the thread")

    async def main() -> bool:
        try:
            await pool.run(raise_it)
        except exc_type as exc:
            return str(exc) == "from the thread"
        return False

    assert run(main())
    thread_count = pool.stats().threads

    async def again() -> None:
        assert await pool.run(int, "2") == 2

    run(again())
    s = assert_invariant(pool)
    assert (s.threads, s.spawned) == (thread_count, 1)


def test_stop_iteration_becomes_runtime_error(run: Runner[None], pool: offload.Pool) -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="next raised StopIteration") as info:
            await pool.run(next, iter([]))
        assert isinstance(info.value.__cause__, StopIteration)

    run(main())


class Big:
    """Stands for a large argument: what matters is when it is freed."""


class TestCancellation:
    @pytest.mark.parametrize("through", ["pool", "limiter", "executor"])
    def test_a_cancelled_queued_call_lets_go_of_its_arguments_at_once(
        self, run: Runner[None], make_pool: MakePool, gate: Gate, through: str
    ) -> None:
        # Cancelled calls wait in their queue, skipped, until the calls before them are
        # popped; a big argument must not wait with them.
        pool = make_pool(max_threads=1)
        release = gate()
        limiter = offload.Limiter(1, pool=pool)
        executor = offload.Executor(pool=pool)
        submit: Any = {"pool": pool.run, "limiter": limiter.run, "executor": executor.submit}[through]

        async def main() -> None:
            blocker = submit(release.wait)
            wait_until(lambda: pool.stats().busy == 1, what="the blocker to run")
            big = Big()
            freed = weakref.ref(big)
            cancelled = submit(id, big)
            behind = submit(int, "5")
            del big
            assert cancelled.cancel()
            assert freed() is None, "the cancelled call still holds its argument"
            release.set()
            if through == "executor":
                blocker, behind = asyncio.wrap_future(blocker), asyncio.wrap_future(behind)
            assert await asyncio.gather(blocker, behind) == [True, 5]

        run(main())
        executor.shutdown()

    def test_a_queued_call_that_is_cancelled_never_runs(
        self, run: Runner[None], make_pool: MakePool, gate: Gate
    ) -> None:
        pool = make_pool(max_threads=1)
        release = gate()
        ran: list[str] = []

        async def main() -> None:
            blocker = start_blocker(pool, release)
            queued = asyncio.ensure_future(awaited(pool.run(ran.append, "queued")))
            await asyncio.sleep(0)  # let the task start awaiting
            assert pool.stats().queued == 1
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert pool.stats().queued == 0
            release.set()
            await blocker
            assert await pool.run(ran.append, "after") is None
            assert ran == ["after"]

        run(main())

    def test_a_running_call_releases_its_awaiter_at_once(
        self, run: Runner[None], pool: offload.Pool, gate: Gate
    ) -> None:
        release, saw_cancel = gate(), threading.Event()

        def long_call() -> str:
            release.wait()
            if offload.cancelled():
                saw_cancel.set()
            return "dropped"

        async def main() -> None:
            task = asyncio.ensure_future(awaited(pool.run(long_call)))
            wait_until(lambda: pool.stats().busy == 1, what="the call to start")
            await asyncio.sleep(0)  # let the task start awaiting
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task  # returns while the thread is still blocked
            assert pool.stats().busy == 1
            release.set()
            assert saw_cancel.wait(10)
            wait_until(lambda: pool.stats().busy == 0, what="the thread to finish")

        run(main())

    def test_an_error_after_cancellation_is_logged(
        self, run: Runner[None], pool: offload.Pool, gate: Gate, caplog: pytest.LogCaptureFixture
    ) -> None:
        release = gate()

        def fails_late() -> NoReturn:
            release.wait()
            raise ValueError("nobody is listening")

        async def main() -> None:
            call = pool.run(fails_late)
            wait_until(lambda: pool.stats().busy == 1, what="the call to start")
            assert call.cancel()  # type: ignore[attr-defined]
            release.set()
            wait_until(lambda: len(caplog.records) == 1, what="the error to be logged")

        with caplog.at_level(logging.ERROR, logger="offload"):
            run(main())
        [record] = caplog.records
        assert "fails_late raised after its awaiter was cancelled" in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)

    def test_check_cancelled_stops_a_long_call_quietly(
        self, run: Runner[None], pool: offload.Pool, gate: Gate, caplog: pytest.LogCaptureFixture
    ) -> None:
        started, steps = gate(), []

        def steps_until_cancelled() -> None:
            started.set()
            while True:
                offload.check_cancelled()
                steps.append(1)
                if len(steps) > 10_000_000:  # pragma: no cover - a hang guard
                    return

        async def main() -> None:
            task = asyncio.ensure_future(awaited(pool.run(steps_until_cancelled)))
            assert await asyncio.to_thread(started.wait, 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            wait_until(lambda: pool.stats().busy == 0, what="the call to stop")

        with caplog.at_level(logging.DEBUG, logger="offload"):
            run(main())
        assert caplog.records == []

    def test_timeout_and_wait_for_cancel_the_call(
        self, run: Runner[None], pool: offload.Pool, gate: Gate
    ) -> None:
        release = gate()

        async def main() -> None:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await pool.run(release.wait)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.run(release.wait), 0.01)
            release.set()

        run(main())

    def test_gather_cancels_every_call(self, run: Runner[None], make_pool: MakePool, gate: Gate) -> None:
        pool = make_pool(max_threads=1)
        release = gate()

        async def main() -> None:
            gathered = asyncio.gather(*(pool.run(release.wait) for _ in range(5)))
            wait_until(lambda: pool.stats().busy == 1, what="the first call to start")
            gathered.cancel()
            with pytest.raises(asyncio.CancelledError):
                await gathered
            s = pool.stats()
            assert s.queued == 0
            release.set()

        run(main())
        wait_until(lambda: pool.stats().completed == 1, what="the running call to finish")

    def test_cancel_after_completion_is_a_no_op(self, run: Runner[None], pool: offload.Pool) -> None:
        async def main() -> None:
            call = pool.run(int, "4")
            assert await call == 4
            assert not call.cancel()  # type: ignore[attr-defined]

        run(main())

    def test_cancelled_outside_a_call_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="outside an offloaded call"):
            offload.cancelled()
        with pytest.raises(RuntimeError, match="outside an offloaded call"):
            offload.check_cancelled()


def test_threads_are_named_for_pool_and_function(run: Runner[None], pool: offload.Pool) -> None:
    def whoami() -> str:
        return threading.current_thread().name

    name = "test-1:test_threads_are_named_for_pool_and_function.<locals>.whoami"

    async def main() -> None:
        assert await pool.run(whoami) == name
        assert await pool.run(functools.partial(whoami)) == name  # named for what it calls

    run(main())
    # The idle thread keeps the name of its last call rather than pay two renames per call.
    assert [t.name for t in threading.enumerate() if t.name.startswith("test-")] == [name]


class TestBadInput:
    async def _coroutine_function(self) -> None:
        pass

    @pytest.mark.parametrize(
        "not_callable", [None, 42, "print", functools.partial(contextvars.Context().run, 42)]
    )
    def test_not_callable(self, run: Runner[None], pool: offload.Pool, not_callable: Any) -> None:
        async def main() -> None:
            with pytest.raises(TypeError, match="needs a callable to run in a thread, not"):
                pool.run(not_callable)

        run(main())
        assert assert_invariant(pool).completed == 0

    def test_coroutine_functions_are_refused_at_the_call_site(
        self, run: Runner[None], pool: offload.Pool
    ) -> None:
        async def fetch() -> None:
            pass

        # Seen through partials, as asyncio.to_thread wraps it: partial(Context.run, fn).
        to_thread_shaped = functools.partial(contextvars.copy_context().run, fetch)

        async def main() -> None:
            for fn in (fetch, self._coroutine_function, functools.partial(fetch), to_thread_shaped):
                with pytest.raises(
                    TypeError, match=r"(fetch|_coroutine_function) is a coroutine function.*await it directly"
                ):
                    pool.run(fn)

        run(main())
        assert pool.stats().spawned == 0

    def test_async_generator_functions_and_async_callables_are_refused_at_the_call_site(
        self, run: Runner[None], pool: offload.Pool
    ) -> None:
        async def rows() -> AsyncIterator[int]:
            yield 1

        class AsyncCallable:
            async def __call__(self) -> None:
                pass

        async def main() -> None:
            with pytest.raises(TypeError, match=r"is an async generator function.*async for"):
                pool.run(rows)
            with pytest.raises(TypeError, match=r"AsyncCallable is a coroutine function.*await it directly"):
                pool.run(AsyncCallable())

        run(main())
        assert pool.stats().spawned == 0

    def test_a_callable_whose_name_cannot_be_read_runs(self, run: Runner[None], pool: offload.Pool) -> None:
        # A framework's proxy object raises on attribute lookups it does not forward. The
        # pool thread names itself after the call before running it: that must not kill
        # it (the awaiter would never be answered, and exit would wait for it for ever).
        class Proxy:
            def __getattribute__(self, name: str) -> Any:
                if name == "__qualname__":
                    raise RuntimeError("working outside of a request context")
                return object.__getattribute__(self, name)

            def __call__(self) -> str:
                return threading.current_thread().name

        async def main() -> None:
            async with asyncio.timeout(10):  # a killed thread never answers
                assert await pool.run(Proxy()) == f"test-1:{Proxy.__qualname__}"

        run(main())
        assert assert_invariant(pool).completed == 1

    def test_a_returned_coroutine_is_refused_without_a_warning(
        self, run: Runner[None], pool: offload.Pool
    ) -> None:
        async def fetch() -> None:
            pass

        async def main() -> None:
            with pytest.raises(TypeError, match="returned a coroutine"):
                await pool.run(lambda: fetch())

        run(main())  # filterwarnings=error turns "never awaited" into a failure

    def test_no_running_loop(self, pool: offload.Pool) -> None:
        with pytest.raises(RuntimeError, match="needs a running event loop"):
            pool.run(int)
        with pytest.raises(RuntimeError, match="needs a running event loop"):
            offload.offload(int)
        assert assert_invariant(pool).queued == 0
