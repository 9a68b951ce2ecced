"""watch_loop(): one report per block, naming the line that blocked, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sqlite3
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import offload

from ..support.loops import LOOP_FACTORIES, Runner
from ..support.polling import wait_until
from ..support.pools import Gate
from ..support.scripts import EXAMPLES, load_example
from ..support.seams import Stack, wrap_capture_stack

THRESHOLD = 0.02  # seconds; the blocks below last as long as the watchdog needs, not a set time


class Blocker:
    """Blocking calls that hold the loop's thread until the watchdog has seen them twice.

    The first look finds the block; a block is marked in progress only after it, so the
    second look is the proof that it was. Each call then returns, and the block lasts
    exactly as long as the test needs: no sleeping, whatever the machine's load.

    A test lets the loop turn once between the watchdog's start and its first call: the
    block then begins in the call. Without that turn it would begin in start(), which
    waits for the watchdog's thread to start, and a loaded machine can stretch that wait
    past THRESHOLD; the first look would then find the loop in start(), not in the call.
    """

    def __init__(self) -> None:
        # Futures, not events: result() returns None where Event.wait() returns True,
        # which would abort the sqlite3 query that hold() is made for.
        self.released = {name: Future[None]() for name in ("first_call", "second_call")}
        self.sightings: Counter[str] = Counter()  # only the watchdog's thread writes it

    def hold(self, name: str) -> Callable[[], None]:
        """A call that holds its thread until the watchdog has seen a frame named ``name``
        twice, then returns None, at once from then on. Made before the watch starts, as
        the watchdog's thread reads ``released`` without a lock.

        Only the standard library's code runs in it, so a report passes over it and names
        the line that called it.
        """
        self.released[name] = Future()
        return self.released[name].result

    def first_call(self) -> None:
        self.released["first_call"].result()

    def second_call(self) -> None:
        self.released["second_call"].result()

    def saw(self, stack: Stack) -> None:
        for name, released in self.released.items():
            if any(frame.name == name for frame in stack):
                self.sightings[name] += 1
                if self.sightings[name] == 2:
                    released.set_result(None)


@pytest.fixture
def blocker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Blocker]:
    blocker = Blocker()

    def capture_and_tell(capture: Callable[[int], Stack], thread_id: int) -> Stack:
        stack = capture(thread_id)
        blocker.saw(stack)
        return stack

    wrap_capture_stack(monkeypatch, capture_and_tell)
    yield blocker
    for released in blocker.released.values():  # a failing test must not hang
        if not released.done():
            released.set_result(None)


def line_of(call: Any) -> int:
    """The line of the one statement in the body of ``call``, a Blocker call."""
    return int(call.__code__.co_firstlineno) + 1


def test_a_block_is_reported_once_naming_the_line_that_blocked(run: Runner[None], blocker: Blocker) -> None:
    reports: list[offload.BlockReport] = []

    async def main() -> None:
        with offload.watch_loop(THRESHOLD, on_block=reports.append):
            await asyncio.sleep(0)  # answers start()'s probe (see Blocker)
            blocker.first_call()

    run(main())
    assert len(reports) == 1
    report = reports[0]
    where = report.where
    assert where is not None
    assert (where.filename, where.lineno, where.name) == (__file__, line_of(Blocker.first_call), "first_call")
    assert [frame.name for frame in report.stack if frame.filename == __file__][-2:] == ["main", "first_call"]
    assert report.end_stack is None  # it ended where it was first seen
    assert report.duration > THRESHOLD
    text = str(report)
    assert f"{__file__}:{line_of(Blocker.first_call)}, in first_call" in text
    assert "Run that call in a thread: await offload(fn, *args)" in text
    assert "Stack when last seen" not in text


def test_the_stack_where_a_block_ended_is_reported_if_different(run: Runner[None], blocker: Blocker) -> None:
    reports: list[offload.BlockReport] = []

    async def main() -> None:
        async with offload.watch_loop(THRESHOLD, on_block=reports.append):
            await asyncio.sleep(0)  # answers start()'s probe (see Blocker)
            blocker.first_call()
            blocker.second_call()  # no turn of the loop in between: the same block

    run(main())
    assert len(reports) == 1
    report = reports[0]
    assert report.where is not None
    assert report.where.name == "first_call"
    assert report.end_stack is not None
    assert report.end_stack[-1].name == "wait"  # the full stack, down to threading's
    assert [frame.name for frame in report.end_stack if frame.filename == __file__][-1] == "second_call"
    text = report.format()
    assert text.index(f"line {line_of(Blocker.first_call)}") < text.index("Stack when last seen")
    assert text.index("Stack when last seen") < text.index(f"line {line_of(Blocker.second_call)}")


async def block_twice(
    blocker: Blocker,
    pool: offload.Pool,
    reports: list[offload.BlockReport],
    on_block: Callable[[offload.BlockReport], None],
) -> None:
    """Blocks the loop twice, watched, with a turn of the loop in between."""
    async with offload.watch_loop(THRESHOLD, on_block=on_block):
        await asyncio.sleep(0)  # answers start()'s probe (see Blocker)
        blocker.first_call()
        # The loop turns while this waits, and that ends the block: reported now.
        await pool.run(wait_until, lambda: len(reports) == 1, what="the first report")
        blocker.second_call()


def test_each_block_gets_its_own_report_once_the_loop_turns(
    run: Runner[None], blocker: Blocker, pool: offload.Pool
) -> None:
    reports: list[offload.BlockReport] = []
    run(block_twice(blocker, pool, reports, on_block=reports.append))
    assert [report.where.name for report in reports if report.where] == ["first_call", "second_call"]


def test_nothing_is_reported_while_the_loop_stays_responsive(run: Runner[None], pool: offload.Pool) -> None:
    reports: list[offload.BlockReport] = []

    async def main() -> None:
        async with offload.watch_loop(threshold=0.2, on_block=reports.append):
            for _ in range(25):  # about 0.25 s: some five probes, all answered in time
                await asyncio.sleep(0.01)
                await pool.run(sum, [1, 2])

    run(main())
    assert reports == []


def test_a_block_that_ends_while_the_watchdog_looks_is_not_reported(
    run: Runner[None], monkeypatch: pytest.MonkeyPatch, gate: Gate
) -> None:
    # The race, forced: 1. the loop blocks; 2. the watchdog starts taking its stack;
    # 3. meanwhile the block ends and the loop turns; 4. the stack taken may be from after
    # the block, so no block is marked in progress, and none is reported.
    reports: list[offload.BlockReport] = []
    looking, turned = gate(), gate()

    def capture_while_the_loop_turns(capture: Callable[[int], Stack], thread_id: int) -> Stack:
        looking.set()
        turned.wait()
        return capture(thread_id)

    wrap_capture_stack(monkeypatch, capture_while_the_loop_turns)

    async def main() -> None:
        with offload.watch_loop(THRESHOLD, on_block=reports.append):
            looking.wait()
            # The watchdog's probe, posted before the block, runs before this sleep ends.
            await asyncio.sleep(0.01)
            turned.set()

    run(main())
    assert reports == []


class HeldLooks:
    """Stands in for a watchdog's stop event, to hold its thread between looks.

    Each of the thread's waits runs the next of ``holds`` instead of sleeping, as a loaded
    machine may keep the thread off the CPU for as long; once they are spent, the waits
    are real again.
    """

    def __init__(self, *holds: Callable[[], object]) -> None:
        self._holds = list(holds)
        self._stopped = threading.Event()

    def wait(self, timeout: float) -> bool:
        if self._holds:
            self._holds.pop(0)()
            return self._stopped.is_set()
        return self._stopped.wait(timeout)

    def set(self) -> None:
        self._stopped.set()


def test_a_block_from_the_first_moment_is_seen_at_a_late_first_look(run: Runner[None], gate: Gate) -> None:
    # The watchdog's thread looks once during the block, and only once it is THRESHOLD
    # old; its next look comes after the block. That one look must find it.
    reports: list[offload.BlockReport] = []
    watchdog = offload.watch_loop(THRESHOLD, on_block=reports.append)
    blocked, released, answered = gate(), gate(), gate()
    began: list[float] = []

    def until_the_block_is_threshold_old() -> None:
        blocked.wait()
        wait_until(lambda: time.monotonic() > began[0] + THRESHOLD, what="the threshold")

    def until_the_loop_has_turned_after_it() -> None:
        released.set()
        answered.wait()

    watchdog._stopping = HeldLooks(until_the_block_is_threshold_old, until_the_loop_has_turned_after_it)  # type: ignore[assignment]

    async def main() -> None:
        with watchdog:
            began.append(time.monotonic())
            blocked.set()
            released.wait()
            await asyncio.sleep(0)  # the turn that answers the first probe
            answered.set()

    run(main())
    [report] = reports
    assert "main" in [frame.name for frame in report.stack]
    assert report.duration > THRESHOLD


def test_a_block_in_progress_when_the_loop_closes_is_reported(loop_name: str, blocker: Blocker) -> None:
    reports: list[offload.BlockReport] = []
    loop = LOOP_FACTORIES[loop_name]()
    watchdog = offload.watch_loop(THRESHOLD, on_block=reports.append)

    def start() -> None:
        watchdog.start()
        loop.call_soon(block_and_stop)  # after start()'s probe (see Blocker)

    def block_and_stop() -> None:
        blocker.first_call()
        loop.stop()  # asyncio stops before it runs the watchdog's next probe; uvloop runs it

    loop.call_soon(start)
    loop.run_forever()
    loop.close()  # without watchdog.stop(): the watchdog ends with the loop
    wait_until(lambda: len(reports) == 1, what="the report")
    [report] = reports
    assert report.where is not None
    assert report.where.name == "first_call"


def test_a_loop_stopped_between_runs_is_not_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_while_stopped = threading.Event()
    captured: list[int] = []
    wrap_capture_stack(monkeypatch, lambda _capture, thread_id: captured.append(thread_id) or ())

    class Loop(asyncio.SelectorEventLoop):
        def is_running(self) -> bool:
            running = super().is_running()
            if threading.current_thread().name == "offload-watchdog" and not running:
                looked_while_stopped.set()
            return running

    reports: list[offload.BlockReport] = []
    watchdog = offload.watch_loop(THRESHOLD, on_block=reports.append)
    loop = Loop()

    async def start() -> None:
        watchdog.start()

    loop.run_until_complete(start())  # then the loop stops, and its probe stays unanswered
    assert looked_while_stopped.wait(timeout=10)
    watchdog.stop()  # on the loop's thread, which is not running it
    loop.close()
    assert (reports, captured) == ([], [])


def test_a_stack_without_your_code_is_shown_whole() -> None:
    library_frame = traceback.FrameSummary(asyncio.__file__, 1, "run", line="")
    report = offload.BlockReport(duration=0.1, stack=(library_frame,), end_stack=None, started_at=0.0)
    assert report.where is library_frame
    assert f'File "{asyncio.__file__}", line 1, in run' in report.format()
    empty = offload.BlockReport(duration=0.1, stack=(), end_stack=None, started_at=0.0)
    assert empty.where is None
    assert empty.format().startswith("The event loop was blocked for 100 ms at an unknown place\n")


def test_reports_are_logged_by_default(
    run: Runner[None], blocker: Blocker, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with offload.watch_loop(THRESHOLD):
            await asyncio.sleep(0)  # answers start()'s probe (see Blocker)
            blocker.first_call()

    with caplog.at_level(logging.WARNING, logger="offload"):
        run(main())
    [record] = caplog.records
    assert (record.name, record.levelno) == ("offload", logging.WARNING)
    assert f"{__file__}:{line_of(Blocker.first_call)}, in first_call" in record.getMessage()


def test_an_error_in_on_block_is_logged_and_the_watch_goes_on(
    run: Runner[None], blocker: Blocker, pool: offload.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    reports: list[offload.BlockReport] = []

    def fail(report: offload.BlockReport) -> None:
        reports.append(report)
        raise ValueError("bad handler")

    run(block_twice(blocker, pool, reports, on_block=fail))
    assert len(reports) == 2
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_a_watchdog_never_stopped_ends_with_its_loop(run: Runner[None]) -> None:
    async def main() -> None:
        offload.watch_loop(THRESHOLD).start()

    run(main())
    wait_until(
        lambda: "offload-watchdog" not in [t.name for t in threading.enumerate()],
        what="the watchdog thread to end",
    )


def test_start_and_stop_say_what_is_wrong(run: Runner[None]) -> None:
    with pytest.raises(RuntimeError, match="needs a running asyncio event loop"):
        offload.watch_loop().start()
    watchdog = offload.watch_loop()
    with pytest.raises(RuntimeError, match="needs a started watchdog"):
        watchdog.stop()

    async def main() -> None:
        with watchdog:
            with pytest.raises(RuntimeError, match="was started before"):
                watchdog.start()
            with pytest.raises(RuntimeError, match="from its loop's thread"):
                await asyncio.to_thread(watchdog.stop)
        watchdog.stop()  # again: harmless

    run(main())


@pytest.mark.parametrize(
    ("threshold", "error"),
    [
        ("0.1", TypeError),
        (True, TypeError),
        (0, ValueError),
        (-1, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
    ],
)
def test_a_bad_threshold_fails_at_once(threshold: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="threshold must be"):
        offload.watch_loop(threshold)


def waiting_or_gone(thread: threading.Thread | None) -> bool:
    """Whether ``thread`` is in a timed wait (in threading's ``Condition.wait``, past the
    point where a timeout too long for it fails), or has ended."""
    assert thread is not None
    frame = sys._current_frames().get(thread.ident or 0)
    return frame is None or frame.f_code is threading.Condition.wait.__code__


def test_a_threshold_longer_than_a_thread_can_wait_means_never(
    run: Runner[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # threading's waits refuse a timeout over threading.TIMEOUT_MAX (about 292 years),
    # where asyncio's delays take any number: such a threshold must not kill the thread.
    thread_errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    reports: list[offload.BlockReport] = []

    async def main() -> None:
        with offload.watch_loop(threshold=4e10, on_block=reports.append) as watchdog:
            # Blocks the loop, which no threshold this long reports, until the watchdog's
            # thread has begun its first wait (or died trying to).
            wait_until(lambda: waiting_or_gone(watchdog._thread), what="the watchdog to wait")
            assert watchdog._thread is not None
            assert watchdog._thread.is_alive(), thread_errors

    run(main())
    assert (thread_errors, reports) == ([], [])


def test_a_bad_on_block_fails_at_once() -> None:
    with pytest.raises(
        TypeError, match=r"^on_block must be callable \(a function of one BlockReport\), not int"
    ):
        offload.watch_loop(on_block=3)  # type: ignore[arg-type]


def test_the_example_names_the_sqlite3_query_and_not_its_offloaded_twin(
    run: Runner[None], default_pool: offload.Pool, blocker: Blocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each query lasts as long as the test needs, however fast the machine runs it:
    # sqlite3 calls a progress handler as a query runs, and the handler waits there. The
    # query on the loop's thread waits until the watchdog has seen it (Blocker.hold). The
    # offloaded twin waits for turns of the loop, so the loop provably turns while it
    # runs; on the loop's own thread call_on_loop() raises, and that aborts the query.
    progress_handlers: Iterator[Callable[[], int | None]] = iter(
        [blocker.hold("total"), functools.partial(offload.call_on_loop, int)]
    )
    connect = sqlite3.connect

    def connect_with_progress(database: str) -> sqlite3.Connection:
        db = connect(database)
        db.set_progress_handler(next(progress_handlers), 1000)  # every 1000 steps of sqlite's VM
        return db

    monkeypatch.setattr(sqlite3, "connect", connect_with_progress)
    reports: list[offload.BlockReport] = []
    said: list[str] = []
    run(load_example("find_blocking_calls").main(n=1000, on_block=reports.append, say=said.append))
    assert said[1::2] == ["on_the_loop: sum = 500500", "offloaded: sum = 500500"]
    [report] = reports
    assert report.where is not None
    assert (report.where.filename, report.where.name) == (str(EXAMPLES / "find_blocking_calls.py"), "total")
    assert report.where.line == "(value,) = db.execute(QUERY, (n,)).fetchone()"
    assert "on_the_loop" in [frame.name for frame in report.stack]
    assert default_pool.stats().completed == 1
