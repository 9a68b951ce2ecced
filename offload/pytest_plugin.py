"""offload's pytest plugin: fail the async tests that block their event loop.

pytest loads it from offload's ``pytest11`` entry point, and it stays inert unless asked:

- ``--offload-block-threshold=MS``, or the ini option ``offload_block_threshold``, runs
  each async test under ``offload.watch_loop()`` and fails it if its loop was blocked
  longer than MS milliseconds. The failure shows each block's stack, and names the line
  to wrap in ``await offload(...)``.
- ``@pytest.mark.offload_block_threshold(MS)`` sets one test's own threshold, higher or
  lower, where the option or the ini option is given.
- The ``offload_pool`` fixture gives a test a fresh ``offload.Pool`` as the default pool.

The watchdog runs inside the test's coroutine, on whatever loop runs it, so it works with
pytest-asyncio (any loop scope) and with anyio's plugin on its asyncio backend, uvloop
included; it watches the test function, not its fixtures. A test on another event loop
(trio) runs unwatched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from typing import TYPE_CHECKING, Any

import pytest

from ._pool.exit import abandon_calls
from ._pool.pool import Pool
from ._submitters.default import set_default_pool
from ._watchdog.watchdog import milliseconds, run_watched

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator, Iterator

    from ._watchdog.report import BlockReport

__all__ = ["offload_pool", "pytest_addoption", "pytest_configure"]

_OPTION = "offload_block_threshold"


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = (
        "fail each async test whose event loop was blocked longer than MS milliseconds, "
        "naming the blocking call (offload's watchdog)"
    )
    parser.getgroup("offload").addoption(
        "--offload-block-threshold", metavar="MS", dest=_OPTION, help=help_text
    )
    parser.addini(_OPTION, help_text, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_OPTION}(MS): this test's own threshold for --offload-block-threshold, in milliseconds",
    )
    given = config.getoption(_OPTION) or config.getini(_OPTION)
    if given:
        config.pluginmanager.register(
            _BlockCheck(_milliseconds(given, f"--offload-block-threshold (or {_OPTION} in the ini file)"))
        )


def _milliseconds(value: object, source: str) -> float:
    try:
        return milliseconds(value)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


def _marked_threshold(marker: pytest.Mark) -> float:
    """The threshold of ``@pytest.mark.offload_block_threshold(MS)``, in milliseconds.

    Raises:
        pytest.fail.Exception: The marker is not given one positive number: a failure of
            the test it marks, in one line, rather than an error of the whole run.
    """
    if len(marker.args) == 1 and not marker.kwargs:
        with contextlib.suppress(ValueError):
            return milliseconds(marker.args[0])
    given = ", ".join(
        [*map(repr, marker.args), *(f"{key}={value!r}" for key, value in marker.kwargs.items())]
    )
    pytest.fail(
        f"{_OPTION} takes one positive number of milliseconds, e.g. "
        f"@pytest.mark.{_OPTION}(200); got ({given})",
        pytrace=False,
    )


class _BlockCheck:
    """Runs each async test under watch_loop(); registered only when a threshold is given."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(item.obj):
            return (yield)
        marker = item.get_closest_marker(_OPTION)
        threshold_ms = self.threshold_ms if marker is None else _marked_threshold(marker)
        blocks: list[BlockReport] = []
        test = item.obj
        # Swapped in before pytest-asyncio or anyio wraps item.obj to run it on their loop,
        # so the watchdog starts inside the test's coroutine, on the loop that runs it.
        item.obj = _watched(test, threshold_ms / 1000, blocks.append)
        try:
            yield
        except BaseException:
            # It failed on its own; a block can be why (a timeout, say), so show them too.
            if blocks:
                item.add_report_section("call", "offload", _describe(blocks, threshold_ms))
            raise
        finally:
            item.obj = test
        if blocks:
            pytest.fail(_describe(blocks, threshold_ms), pytrace=False)


def _watched(
    test: Callable[..., Coroutine[Any, Any, object]],
    threshold: float,
    on_block: Callable[[BlockReport], object],
) -> Callable[..., Coroutine[Any, Any, object]]:
    @functools.wraps(test)
    async def watched(*args: Any, **kwargs: Any) -> object:
        if asyncio._get_running_loop() is None:  # trio, through anyio
            return await test(*args, **kwargs)
        return await run_watched(test(*args, **kwargs), threshold, on_block)

    return watched


def _describe(blocks: list[BlockReport], threshold_ms: float) -> str:
    times = "once" if len(blocks) == 1 else f"{len(blocks)} times"
    header = f"offload: this test blocked its event loop longer than {threshold_ms:g} ms {times}."
    return "\n\n".join([header, *map(str, blocks)])


@pytest.fixture
def offload_pool(request: pytest.FixtureRequest) -> Iterator[Pool]:
    """A fresh ``offload.Pool``, made the default pool of ``offload()`` during the test.

    Examples:
        ```python
        async def test_reads(offload_pool):
            assert await offload.offload(path.read_text) == "data"
            assert offload_pool.stats().completed == 1
        ```

    After the test the previous default pool is restored and this one is shut down. The
    test then errors if it left an offloaded call running or queued: a call whose awaiter
    was cancelled runs on in its thread, so wait for it (it can stop early by checking
    ``offload.cancelled()``). Those calls are then given up on, as abandonable calls whose
    awaiters were cancelled (queued ones never run), so that the session's exit does not
    wait for them.
    """
    pool = Pool(name=f"offload_pool[{request.node.name}]")
    previous = set_default_pool(pool)
    yield pool
    set_default_pool(previous)
    stats = pool.stats()
    left = stats.busy + stats.queued
    pool.shutdown(wait=not left, cancel_queued=True)
    if left:
        # Reported below: then given up on, so that the session's exit does not wait for
        # a call that may never end.
        abandon_calls(pool)
        threads = ", ".join(sorted(t.name for t in threading.enumerate() if t.name.startswith(pool.name)))
        pytest.fail(
            f"the test left {left} offloaded call(s) running or queued on its offload_pool "
            f"(its threads: {threads or 'none started yet'}); await each call before the test ends",
            pytrace=False,
        )
