"""offload's pytest plugin, run for real: each test runs pytest in a subprocess."""

from __future__ import annotations

import importlib.util

import pytest

# The anyio tests below run on asyncio, and on uvloop where it is installed (it is not on
# free-threaded builds).
ANYIO_LOOPS = 1 if importlib.util.find_spec("uvloop") is None else 2

PYTEST_ASYNCIO_TESTS = """\
import time

import pytest

import offload


@pytest.mark.asyncio
async def test_sleeps_on_the_loop():
    time.sleep(0.2)


@pytest.mark.asyncio
async def test_offloads_the_sleep():
    await offload.offload(time.sleep, 0.2)


@pytest.mark.asyncio(loop_scope="module")
async def test_sleeps_on_the_module_loop():
    time.sleep(0.2)


@pytest.mark.asyncio(loop_scope="module")
async def test_offloads_the_sleep_on_the_module_loop():
    await offload.offload(time.sleep, 0.2)


@pytest.mark.asyncio
@pytest.mark.offload_block_threshold(10_000)
async def test_raises_its_own_threshold():
    time.sleep(0.2)


def test_a_test_without_a_loop_is_not_watched():
    time.sleep(0.1)
"""

ANYIO_TESTS = """\
import importlib.util
import time

import pytest

import offload

pytestmark = pytest.mark.anyio


NO_UVLOOP = importlib.util.find_spec("uvloop") is None
UVLOOP = pytest.param(
    ("asyncio", {"use_uvloop": True}),
    id="uvloop",
    marks=pytest.mark.skipif(NO_UVLOOP, reason="uvloop is not installed"),
)


@pytest.fixture(params=["asyncio", UVLOOP])
def anyio_backend(request):
    return request.param


async def test_sleeps_on_the_loop():
    time.sleep(0.2)


async def test_offloads_the_sleep():
    await offload.offload(time.sleep, 0.2)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_runs_unwatched(anyio_backend):
    time.sleep(0.2)
"""

# A DeprecationWarning from the plugin's own code fails its session (Python 3.14 deprecates
# the event loop policy functions, which the plugin must not use).
INI = (
    "[pytest]\n"
    "asyncio_default_fixture_loop_scope = function\n"
    "filterwarnings = error::DeprecationWarning:offload\n"
)


def run_pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Without hypothesis's plugin, which would import hypothesis: a second per run.
    # Without the short summary, whose lines repeat a failure's message or not
    # depending on the terminal's width, so that what the tests count is fixed.
    # Bounded: a session whose exit waits for a call left running must fail, not hang.
    return pytester.runpytest_subprocess("-p", "no:hypothesispytest", "-rN", *args, timeout=120)


def report_of(pytester: pytest.Pytester, test_file: str, source: str, test: str) -> str:
    """What a report says of a block at the first line of ``test``, in ``test_file``."""
    lines = source.splitlines()
    line = lines.index(f"async def {test}():") + 2
    return f"{pytester.path / test_file}:{line}, in {test}\n    {lines[line - 1].strip()}\n"


def test_async_tests_that_block_their_loop_fail_naming_the_line(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_asyncio=PYTEST_ASYNCIO_TESTS, test_anyio=ANYIO_TESTS)
    result = run_pytest(pytester, "--offload-block-threshold=50")
    # Two blocking tests on pytest-asyncio's loop, and one on each of anyio's loops.
    failed = 2 + ANYIO_LOOPS
    result.assert_outcomes(passed=5 + ANYIO_LOOPS, failed=failed, skipped=2 * (2 - ANYIO_LOOPS))
    output = result.stdout.str()
    assert output.count("offload: this test blocked its event loop longer than 50 ms once.") == failed
    assert output.count("Run that call in a thread: await offload(fn, *args)") == failed
    for test in ("test_sleeps_on_the_loop", "test_sleeps_on_the_module_loop"):
        assert output.count(report_of(pytester, "test_asyncio.py", PYTEST_ASYNCIO_TESTS, test)) == 1
    anyio_report = report_of(pytester, "test_anyio.py", ANYIO_TESTS, "test_sleeps_on_the_loop")
    assert output.count(anyio_report) == ANYIO_LOOPS


THRESHOLD_TESTS = """\
import time

import pytest

pytestmark = pytest.mark.asyncio


async def test_blocks_less_than_the_ini_threshold():
    time.sleep(0.2)


@pytest.mark.offload_block_threshold(50)
async def test_lowers_its_own_threshold():
    time.sleep(0.2)


@pytest.mark.offload_block_threshold(50)
async def test_fails_on_its_own_after_a_block():
    time.sleep(0.2)
    raise AssertionError("its own failure")


async def test_fails_on_its_own():
    raise AssertionError("no block here")


@pytest.mark.offload_block_threshold("soon")
async def test_has_a_bad_marker():
    pass
"""


def test_the_ini_option_and_the_marker_set_the_threshold(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI + "offload_block_threshold = 10000\n")
    pytester.makepyfile(test_thresholds=THRESHOLD_TESTS)
    result = run_pytest(pytester)
    result.assert_outcomes(passed=1, failed=4)
    output = result.stdout.str()
    assert output.count("offload: this test blocked its event loop longer than 50 ms once.") == 2
    for test in ("test_lowers_its_own_threshold", "test_fails_on_its_own_after_a_block"):
        assert report_of(pytester, "test_thresholds.py", THRESHOLD_TESTS, test) in output
    assert "AssertionError: its own failure" in output
    assert "AssertionError: no block here" in output
    assert output.count("- Captured offload call -") == 1  # the block, beside the test's own failure
    assert (
        "offload_block_threshold takes one positive number of milliseconds, e.g. "
        "@pytest.mark.offload_block_threshold(200); got ('soon')"
    ) in output


BAD_MARKER_TESTS = """\
import pytest

pytestmark = pytest.mark.asyncio


@pytest.mark.offload_block_threshold(1, 2)
async def test_two_numbers():
    pass


@pytest.mark.offload_block_threshold(ms=200)
async def test_a_keyword():
    pass


@pytest.mark.offload_block_threshold("abc")
async def test_not_a_number():
    pass


@pytest.mark.offload_block_threshold()
async def test_no_number():
    pass
"""


def test_a_bad_marker_fails_its_test_with_one_line_saying_what_it_takes(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_markers=BAD_MARKER_TESTS)
    result = run_pytest(pytester, "--offload-block-threshold=50")
    result.assert_outcomes(failed=4)
    takes = (
        "offload_block_threshold takes one positive number of milliseconds, e.g. "
        "@pytest.mark.offload_block_threshold(200); got "
    )
    output = result.stdout.str()
    for got in ("(1, 2)", "(ms=200)", "('abc')", "()"):
        assert output.count(f"\n{takes}{got}\n") == 1, output
    # One line each, without a traceback through the plugin.
    assert "pytest_plugin.py" not in output
    assert "Error" not in output


FIXTURE_TESTS = """\
import threading
import time

import pytest

import offload

pytestmark = pytest.mark.asyncio


async def test_blocks_unwatched_without_the_option():
    time.sleep(0.2)


async def test_gets_a_fresh_default_pool(offload_pool):
    assert offload.default_pool() is offload_pool
    assert await offload.offload(sum, [1, 2]) == 3
    assert offload_pool.stats().completed == 1


def hold(started, release):
    started.set()
    release.wait()


async def test_leaves_a_call_running(offload_pool):
    started = threading.Event()
    offload.offload(hold, started, threading.Event())  # never released: the session must end
    started.wait()


async def test_has_the_previous_default_pool_back():
    assert offload.default_pool().name == "offload"
"""


def test_offload_pool_is_fresh_and_checked_for_calls_left_running(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_fixture=FIXTURE_TESTS)
    result = run_pytest(pytester)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_a_call_running*",
            "*the test left 1 offloaded call(s) running or queued on its offload_pool "
            "(its threads: offload_pool[[]test_leaves_a_call_running[]]-1:hold); "
            "await each call before the test ends",
        ]
    )


def test_a_bad_threshold_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run_pytest(pytester, "--offload-block-threshold=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--offload-block-threshold (or offload_block_threshold in the ini file): "
            "a threshold must be a positive number of milliseconds, not 'soon'"
        ]
    )
