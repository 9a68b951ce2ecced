"""One line moves a program onto offload: install(), new_event_loop(), run()."""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
import sys
import threading
import weakref

import pytest

import offload

from ..support.loops import LOOP_FACTORIES, Runner
from ..support.polling import wait_until


def test_install_routes_to_thread_and_run_in_executor(run: Runner[None], default_pool: offload.Pool) -> None:
    def thread_name() -> str:
        return threading.current_thread().name

    async def main() -> None:
        executor = offload.install()
        assert executor.pool is default_pool
        assert (await asyncio.to_thread(thread_name)).startswith("default-")
        loop = asyncio.get_running_loop()
        assert (await loop.run_in_executor(None, thread_name)).startswith("default-")
        assert default_pool.stats().completed == 2

    run(main())
    assert not default_pool.closed  # asyncio.Runner shut the executor down, not the pool


def test_threads_are_named_for_the_function_to_thread_runs(
    run: Runner[list[str]], default_pool: offload.Pool
) -> None:
    # asyncio.to_thread submits functools.partial(Context.run, fn): the name is fn's.
    def whoami(*_: object) -> str:
        return threading.current_thread().name

    async def main() -> list[str]:
        offload.install()
        loop = asyncio.get_running_loop()
        return [
            await asyncio.to_thread(whoami),
            await asyncio.to_thread(functools.partial(whoami, 1)),
            await loop.run_in_executor(None, functools.partial(whoami, 1)),
        ]

    assert run(main()) == [f"default-1:{whoami.__qualname__}"] * 3


def test_to_thread_of_a_coroutine_function_is_refused_before_it_takes_a_thread(
    run: Runner[None], default_pool: offload.Pool
) -> None:
    async def fetch() -> None:
        pass

    async def main() -> None:
        offload.install()
        with pytest.raises(TypeError, match=r"\.fetch is a coroutine function.*await it directly"):
            await asyncio.to_thread(fetch)

    run(main())
    assert default_pool.stats().spawned == 0


def test_getaddrinfo_works_after_install(
    run: Runner[None], loop_name: str, default_pool: offload.Pool
) -> None:
    async def main() -> None:
        offload.install()
        infos = await asyncio.get_running_loop().getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        assert infos
        if loop_name == "asyncio":  # uvloop resolves names in libuv's own thread pool
            assert default_pool.stats().completed >= 1

    run(main())


def test_install_needs_a_loop() -> None:
    with pytest.raises(RuntimeError, match=r"install\(\) needs a running event loop"):
        offload.install()


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_run_picks_the_loop_and_installs_offload(default_pool: offload.Pool, use_uvloop: bool) -> None:
    if use_uvloop and "uvloop" not in LOOP_FACTORIES:
        pytest.skip("uvloop is not installed")

    async def main() -> tuple[str, str]:
        name = await asyncio.to_thread(lambda: threading.current_thread().name)
        return type(asyncio.get_running_loop()).__module__, name

    module, name = offload.run(main(), use_uvloop=use_uvloop)
    assert module.startswith("uvloop") == use_uvloop
    assert name.startswith("default-")


def test_new_event_loop_is_a_loop_factory(default_pool: offload.Pool) -> None:
    with asyncio.Runner(loop_factory=offload.new_event_loop) as runner:
        assert runner.run(asyncio.to_thread(sum, [1, 2])) == 3
    assert default_pool.stats().completed == 1


def test_use_uvloop_without_uvloop_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ImportError, match=r"pip install 'offload\[uvloop\]'"):
        offload.new_event_loop(use_uvloop=True)
    loop = offload.new_event_loop()  # None: falls back to asyncio's loop
    assert type(loop).__module__.startswith("asyncio")
    loop.close()


def test_asyncio_run_exits_cleanly_with_calls_in_flight(default_pool: offload.Pool) -> None:
    release = threading.Event()

    async def main() -> None:
        offload.install()
        asyncio.get_running_loop().run_in_executor(None, release.wait)
        wait_until(lambda: default_pool.stats().busy == 1, what="the call to start")
        threading.Timer(0.01, release.set).start()

    asyncio.run(main())  # shutdown_default_executor() waits for the running call
    assert release.is_set()
    assert default_pool.stats().busy == 0


def test_a_pool_install_used_is_freed_once_unused(run: Runner[int]) -> None:
    # install()'s DNS Limiter, shared by every loop on the pool, holds the pool: the
    # cache of them must not keep it for ever.
    async def main() -> int:
        offload.install()
        return await asyncio.to_thread(int, "7")

    pool = offload.Pool(name="used-once")
    previous = offload.set_default_pool(pool)
    try:
        assert run(main()) == 7
    finally:
        offload.set_default_pool(previous)
    pool.shutdown(wait=True)
    freed = weakref.ref(pool)
    del pool
    gc.collect()
    assert freed() is None
