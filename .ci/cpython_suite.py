"""CPython's own tests of ThreadPoolExecutor and of asyncio's default executor, run with
offload substituted in, and again without it (see .ci/cpython_suites).

    python -m cpython_suite TESTS  # in the virtual environment .ci/cpython_suites makes

Two selections, each run in a child process of its own, first as CPython ships it
("plain"), then with offload ("offload"):

- futures: the thread-pool tests of test_concurrent_futures (every class built on its
  ThreadPoolMixin: test_thread_pool, and the shared test_as_completed, test_wait,
  test_shutdown and test_init), with ``concurrent.futures.ThreadPoolExecutor`` replaced,
  before the tests are imported, by a subclass of ``offload.Executor`` of the same name.
  (test_future tests the Future class alone, and test_deadlock process pools alone.)
- asyncio: test_asyncio's test_threads (``to_thread``), test_base_events and test_events,
  with ``offload.install()`` run on every event loop where asyncio would make its own
  default executor (see ``install_on_every_loop``: no policy, no loop factory, so the
  loops the tests make themselves get it too).

The substitution is made as each Python process of the virtual environment starts (a
.pth file calls ``substitute_from_environment()``), so that the child processes some
tests start get offload too.

It prints each run's counts and every test whose outcome differs between the two runs. A
difference must be one that ``DIFFERENCES`` lists, with why (docs/reliability.md,
"CPython's own tests", says the same for readers); the run fails on any other, or when a
listed one no longer happens, so that the list stays true.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import faulthandler
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any, ClassVar

SELECTIONS = {
    "futures": [
        "test.test_concurrent_futures.test_thread_pool",
        "test.test_concurrent_futures.test_as_completed",
        "test.test_concurrent_futures.test_wait",
        "test.test_concurrent_futures.test_shutdown",
        "test.test_concurrent_futures.test_init",
    ],
    "asyncio": [
        "test.test_asyncio.test_threads",
        "test.test_asyncio.test_base_events",
        "test.test_asyncio.test_events",
    ],
}

HANG = 600  # seconds: the most a selection takes, many times over

# Tests not run with offload: each fails an assertion early, before it releases the calls
# it blocked, which then block its tearDown's shutdown(wait=True) for ever, and so every
# test after it. Each is a difference too, listed in DIFFERENCES.
NOT_RUN = {
    "test_concurrent_futures.test_thread_pool.ThreadPoolExecutorTest.test_saturation",
    "test_concurrent_futures.test_shutdown.ThreadPoolShutdownTest.test_threads_terminate",
}

# Every test whose outcome with offload differs from its outcome without it, and why.
# Keys are unittest ids, without the "test." prefix of their package.
_FUTURES = "test_concurrent_futures.test_thread_pool.ThreadPoolExecutorTest."
_SHUTDOWN = "test_concurrent_futures.test_shutdown.ThreadPoolShutdownTest."
_CHAIN = (
    "counts the executor's threads right after submitting calls that block: ThreadPoolExecutor "
    "starts a thread within submit(), offload's pool starts them one after another, each by "
    "the one before as it takes a call, so fewer are there yet"
)
DIFFERENCES: dict[str, str] = {
    _FUTURES + "test_default_workers": (
        "expects ThreadPoolExecutor's default max_workers, min(32, CPUs + 4); offload.Executor's "
        "is the pool's, DEFAULT_MAX_THREADS (256): threads start on demand and all but one leave"
    ),
    _FUTURES + "test_saturation": f"not run: {_CHAIN}; failing, it leaves them blocked",
    _SHUTDOWN + "test_threads_terminate": f"not run: {_CHAIN}; failing, it leaves them blocked",
    _SHUTDOWN + "test_cancel_futures": (
        "expects some of 50 calls submitted to 5 workers to have started when shutdown("
        "cancel_futures=True) follows at once; none had on offload's pool, whose threads start "
        "one after another outside submit(), so all 50 were cancelled"
    ),
    "test_concurrent_futures.test_init.ThreadPoolFailingInitializerTest.test_initializer": (
        "expects the initializer's error logged on the concurrent.futures logger; offload "
        "logs it, as everything it logs, on the offload logger (the executor breaks as "
        "ThreadPoolExecutor does: the test's other checks pass)"
    ),
    _SHUTDOWN + "test_thread_names_assigned": (
        "expects ThreadPoolExecutor's thread names, PREFIX_N; offload names a pool thread "
        "PREFIX-N, and adds the function it runs (PREFIX-N:fn)"
    ),
    _SHUTDOWN + "test_thread_names_default": (
        "expects ThreadPoolExecutor's default thread names, ThreadPoolExecutor-M_N; offload's "
        "are offload-executor-N (with the function it runs)"
    ),
}


SUBSTITUTE = "OFFLOAD_CPYTHON_SUITE"  # the selection whose substitution a process makes
TESTS = "OFFLOAD_CPYTHON_TESTS"  # the folder of the test modules


def substitute_from_environment() -> None:
    """Called by the .pth file .ci/cpython_suites puts in its virtual environment, as each
    Python process there starts, so that the tests' own child processes (``-I``, which
    ignores PYTHONPATH but not site-packages) find the test modules and get offload too."""
    tests = os.environ.get(TESTS)
    if tests:
        # Debian's testsuite package holds the test modules; the interpreter's own test
        # package has test.support alone. Both are of the same release of CPython.
        import test

        test.__path__.append(tests)
    selection = os.environ.get(SUBSTITUTE)
    if selection == "futures":
        substitute_executor()
    elif selection == "asyncio":
        install_on_every_loop()


def substitute_executor() -> None:
    """``concurrent.futures.ThreadPoolExecutor`` is offload's from here on."""
    import concurrent.futures
    import threading

    import offload

    class ThreadPoolExecutor(offload.Executor):
        """offload's Executor, under the name the tests look up, with two attributes of
        ThreadPoolExecutor's that the tests read: the set of its threads, which they count
        and join (``_threads``: each thread of the pool that has run a call of this
        executor, as the thread initializer runs once in each), and ``_broken``."""

        made = 0  # executors made, by the tests' thread only

        def __init__(
            self,
            max_workers: int | None = None,
            thread_name_prefix: str = "",
            initializer: Any = None,
            initargs: tuple[Any, ...] = (),
            **kwargs: Any,
        ) -> None:
            type(self).made += 1
            threads: set[threading.Thread] = set()

            def start(*args: Any) -> None:
                threads.add(threading.current_thread())
                if initializer is not None:
                    initializer(*args)

            # One that is not callable goes as it is, to be refused as offload refuses it.
            chosen = start if initializer is None or callable(initializer) else initializer
            super().__init__(max_workers, thread_name_prefix, chosen, initargs, **kwargs)
            self._threads = threads

        @property
        def _broken(self) -> str | bool:
            # ThreadPoolExecutor's reason it is broken, or False, which a test polls.
            return self._broken_reason or False

    concurrent.futures.ThreadPoolExecutor = ThreadPoolExecutor  # type: ignore[misc]


def install_on_every_loop() -> None:
    """``offload.install()`` on every asyncio loop, as its default executor is first used.

    Not as each loop is made: the tests' own helper that closes a loop runs it once more
    to shut its default executor down, if it has one, and most of their loops are bare
    ones that cannot run. ``install()`` replaces ``run_in_executor()`` on the loop, so
    this one runs once per loop.
    """
    import offload

    own = asyncio.BaseEventLoop.run_in_executor

    def run_in_executor(loop: asyncio.BaseEventLoop, executor: Any, fn: Any, *args: Any) -> Any:
        # As asyncio's own would make its default executor here, unless it refuses to:
        # the loop is closed, or its default executor was shut down.
        fresh = loop._default_executor is None and not loop._executor_shutdown_called  # type: ignore[attr-defined]
        if executor is None and fresh and not loop.is_closed():
            offload.install(loop)
            return loop.run_in_executor(None, fn, *args)
        return own(loop, executor, fn, *args)

    asyncio.BaseEventLoop.run_in_executor = run_in_executor  # type: ignore[method-assign]


class Recorder(unittest.TextTestResult):
    """Records each test's outcome by id, as well as reporting it."""

    outcomes: ClassVar[dict[str, str]] = {}  # of the one run of the child process

    def _record(self, test: unittest.TestCase, outcome: str) -> None:
        name = test.id().removeprefix("test.")
        # A test with failing subtests is failed once, whatever else its subtests did.
        if self.outcomes.get(name, "passed") == "passed" or outcome != "passed":
            self.outcomes[name] = outcome

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed")

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, f"skipped: {reason}")

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "expected failure")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected success")

    def addSubTest(self, test: unittest.TestCase, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, "failed")


def selected(tests: unittest.TestSuite, selection: str) -> list[unittest.TestCase]:
    """The tests of ``selection`` in ``tests``: for futures, those of thread pools."""
    found: list[unittest.TestCase] = []
    for test in tests:
        if isinstance(test, unittest.TestSuite):
            found += selected(test, selection)
        elif selection != "futures" or _thread_pool_test(test):
            found.append(test)
    return found


def _thread_pool_test(test: unittest.TestCase) -> bool:
    from test.test_concurrent_futures.util import ThreadPoolMixin

    return isinstance(test, ThreadPoolMixin)


def run_selection(selection: str, mode: str, out: str) -> None:
    """In the child: runs ``selection`` and writes each test's outcome to ``out``."""
    # A test that hangs is named, with every thread's stack, instead of hanging CI.
    faulthandler.dump_traceback_later(HANG, exit=True)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in SELECTIONS[selection]:
        suite.addTests(selected(loader.loadTestsFromModule(importlib.import_module(name)), selection))
    if mode == "offload":
        for test in suite:
            if test.id().removeprefix("test.") in NOT_RUN:
                setattr(test, test._testMethodName, unittest.skip("not run with offload")(lambda: None))  # type: ignore[attr-defined]
    runner = unittest.TextTestRunner(stream=sys.stderr, resultclass=Recorder, verbosity=0)
    runner.run(suite)
    if mode == "offload" and selection == "asyncio":
        import offload

        # Evidence that the calls went to offload: install() runs them on the default pool.
        print(f"offload: default pool {offload.default_pool().stats()}", file=sys.stderr)
    elif mode == "offload":
        import concurrent.futures

        # The tests' executors run on pools of their own: evidence that they were offload's.
        made = concurrent.futures.ThreadPoolExecutor.made  # type: ignore[attr-defined]
        print(f"offload: {made} offload.Executor made by the tests", file=sys.stderr)
    Path(out).write_text(json.dumps(Recorder.outcomes, indent=1, sort_keys=True))
    # Not a normal exit: a test that failed early may leave calls blocked for ever, which
    # interpreter exit would wait for (as it waits for ThreadPoolExecutor's threads).
    sys.stderr.flush()
    os._exit(0)


def counts(outcomes: dict[str, str]) -> str:
    tally = collections.Counter(outcome.split(":")[0] for outcome in outcomes.values())
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", help="the folder of the test modules (Debian's testsuite package's)")
    parser.add_argument("--selections", nargs="+", choices=list(SELECTIONS), default=list(SELECTIONS))
    parser.add_argument("--child", nargs=3, metavar=("SELECTION", "MODE", "OUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        run_selection(*arguments.child)
        return
    unexplained: list[str] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as work:
        for selection in arguments.selections:
            runs = {}
            for mode in ("plain", "offload"):
                out = f"{work}/{selection}-{mode}.json"
                started = time.monotonic()
                env = {name: value for name, value in os.environ.items() if name != SUBSTITUTE}
                env[TESTS] = arguments.tests
                if mode == "offload":
                    env[SUBSTITUTE] = selection
                child = subprocess.run(
                    [sys.executable, "-m", "cpython_suite", arguments.tests, "--child", selection, mode, out],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=env,
                )
                if not Path(out).exists():
                    sys.exit(f"the {selection} tests ({mode}) did not finish:\n{child.stderr}")
                runs[mode] = json.loads(Path(out).read_text())
                took = time.monotonic() - started
                print(f"{selection}, {mode}: {len(runs[mode])} tests, {counts(runs[mode])} ({took:.0f} s)")
                if mode == "offload":
                    print("  " + child.stderr.strip().splitlines()[-1])
            for name in sorted(runs["plain"].keys() | runs["offload"].keys()):
                before, after = runs["plain"].get(name, "absent"), runs["offload"].get(name, "absent")
                if before == after:
                    continue
                seen.add(name)
                why = DIFFERENCES.get(name)
                print(f"  {name}: {before} -> {after}" + (f"\n      {why}" if why else "  [UNEXPLAINED]"))
                if why is None:
                    unexplained.append(name)
    modules = tuple(module.removeprefix("test.") for s in arguments.selections for module in SELECTIONS[s])
    stale = sorted(name for name in DIFFERENCES.keys() - seen if name.startswith(modules))
    for name in stale:
        print(f"  {name}: listed as a difference, but its outcome is the same with offload")
    if unexplained or stale:
        sys.exit(f"{len(unexplained)} unexplained differences, {len(stale)} listed ones gone")


if __name__ == "__main__":
    main()
