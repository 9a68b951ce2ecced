"""A call is named after the function it runs, in its thread's name and in offload's
messages, seen through ``functools.partial``: asyncio.to_thread wraps every function in
``partial(Context.run, fn, ...)``, Starlette and FastAPI in ``partial(fn, ...)``."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest

import offload

from ..support.loops import Runner
from ..support.pools import assert_invariant


def whoami(*_: object) -> str:
    return threading.current_thread().name


def in_context(fn: Callable[..., Any], *args: object) -> Callable[[], Any]:
    """``fn`` as asyncio.to_thread submits it."""
    return functools.partial(contextvars.copy_context().run, fn, *args)


def labelled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A partial that a partial over it cannot flatten (it has attributes), so stays nested."""
    inner = functools.partial(fn)
    inner.label = "kept"  # type: ignore[attr-defined]
    return inner


@pytest.mark.parametrize(
    "wrapped",
    [
        pytest.param(functools.partial(whoami, 1), id="partial"),
        pytest.param(in_context(whoami, 1), id="to_thread"),
        pytest.param(in_context(functools.partial(whoami, 1)), id="to_thread-of-partial"),
        pytest.param(functools.partial(labelled(whoami), 1), id="nested-partials"),
    ],
)
def test_a_thread_is_named_for_the_function_inside_partials(
    run: Runner[str], pool: offload.Pool, wrapped: Callable[[], str]
) -> None:
    async def main() -> str:
        return await pool.run(wrapped)

    assert run(main()) == "test-1:whoami"


def test_messages_name_the_function_inside_partials(run: Runner[None], pool: offload.Pool) -> None:
    async def fetch() -> None:
        pass

    def stop() -> None:
        raise StopIteration

    async def main() -> None:
        with pytest.raises(TypeError, match=r"^test_messages_.*\.fetch is a coroutine function"):
            pool.run(functools.partial(fetch))
        with pytest.raises(RuntimeError, match=r"^test_messages_.*\.stop raised StopIteration"):
            await pool.run(in_context(stop))

    run(main())


def test_a_partial_over_a_callable_whose_name_cannot_be_read_runs(
    run: Runner[str], pool: offload.Pool
) -> None:
    # A framework's proxy raises on any attribute it cannot forward: naming the thread
    # after what the partial holds must not kill the thread.
    class Proxy:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("working outside of a request context")

        def __call__(self) -> str:
            return threading.current_thread().name

    async def main() -> str:
        async with asyncio.timeout(10):  # a killed thread never answers
            return await pool.run(in_context(functools.partial(Proxy())))

    assert run(main()) == f"test-1:{Proxy.__qualname__}"
    assert assert_invariant(pool).completed == 1
