"""python -m offload watch [--threshold MS] -- script.py [args ...]

Runs a script as "python script.py args ..." would, with
offload.watch_loop() on every event loop it runs through asyncio.run(),
asyncio.Runner, uvloop.run() or offload.run() (all of which run their
main coroutine with asyncio.Runner.run), and prints a summary of the
blocks seen to stderr when it exits: how many, the worst, and the stack
of each place that blocked. A loop run otherwise
(loop.run_until_complete()) is not watched. The "--" keeps the script's
own options from being read as the command's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import runpy
import sys
import textwrap
from typing import TYPE_CHECKING, Any, NoReturn

from ._watchdog.watchdog import milliseconds, run_watched

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence
    from types import TracebackType

    from ._watchdog.report import BlockReport

__all__ = ["main"]

_PROG = "python -m offload"


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the command line: the script ends as with ``python script.py``, then the summary.

    As with python, a script that cannot be read is one line on stderr and exit status 2;
    an exception from the script shows the script's frames, not those of this module or
    of runpy, and exits with status 1.
    """
    args = _parser().parse_args(argv)
    reports: list[BlockReport] = []
    runs: list[asyncio.Runner] = []

    def print_summary() -> None:
        print(summary(reports, args.threshold, watched=bool(runs)), file=sys.stderr)

    try:
        with _loops_watched(args.threshold / 1000, reports.append, runs.append):
            _run_script(args.script, args.args)
    except SystemExit:
        print_summary()  # python prints the message of sys.exit("message") after it, as it exits
        raise
    except BaseException as exc:
        script_traceback = _script_part(exc.__traceback__)
        if script_traceback is None and isinstance(exc, OSError):  # runpy could not read it
            print(
                f"{_PROG} watch: can't open file {os.path.abspath(args.script)!r}: "
                f"[Errno {exc.errno}] {exc.strerror}",
                file=sys.stderr,
            )
            sys.exit(2)
        # Set on the exception too: the default hook prints its traceback, not the argument.
        exc.__traceback__ = script_traceback
        sys.excepthook(type(exc), exc, script_traceback)
        if script_traceback is not None:  # the script ran (None: it did not compile)
            print_summary()
        _raise_unprinted(exc)
    print_summary()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="offload's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    watch = commands.add_parser(
        "watch",
        help="run a script with the event loop watched, and summarise the calls that blocked it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument(
        "--threshold",
        metavar="MS",
        type=_milliseconds,
        default=50.0,
        help="report each block of the loop longer than MS milliseconds (default: 50)",
    )
    watch.add_argument("script", help="the Python script to run")
    watch.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def _milliseconds(text: str) -> float:
    try:
        return milliseconds(text)
    except ValueError as exc:
        # argparse shows an ArgumentTypeError's message; any other error becomes "invalid
        # _milliseconds value", which does not say what a threshold may be.
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextlib.contextmanager
def _loops_watched(
    threshold: float,
    on_block: Callable[[BlockReport], object],
    on_run: Callable[[asyncio.Runner], object],
) -> Iterator[None]:
    run = asyncio.Runner.run

    def watched_run(runner: asyncio.Runner, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
        on_run(runner)
        return run(runner, run_watched(coro, threshold, on_block), **kwargs)

    # Only for the script's lifetime: this is a tool that runs one script, as cProfile is.
    setattr(asyncio.Runner, "run", watched_run)  # noqa: B010 (mypy refuses assigning to a method)
    try:
        yield
    finally:
        setattr(asyncio.Runner, "run", run)  # noqa: B010


def _run_script(path: str, args: Sequence[str]) -> None:
    # As `python script.py args` sets them up.
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    runpy.run_path(path, run_name="__main__")


def _script_part(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` as ``python script.py`` would show it: without the frames of this module
    (around the script, and around its event loops), of runpy and of ``run_watched()``."""
    ours = (globals(), vars(runpy))
    while tb is not None and any(tb.tb_frame.f_globals is namespace for namespace in ours):
        tb = tb.tb_next
    shown: list[TracebackType] = []
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals is not globals() and frame.f_code is not run_watched.__code__:
            shown.append(tb)
        tb = tb.tb_next
    if not shown:
        return None
    for outer, inner in itertools.pairwise(shown):
        outer.tb_next = inner
    shown[-1].tb_next = None
    return shown[0]


def _raise_unprinted(exc: BaseException) -> NoReturn:
    """Raises ``exc``, already shown, on to python, which then exits as for ``python
    script.py`` (status 1; or for a KeyboardInterrupt, killed by SIGINT) without
    printing it again."""
    hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if value is not exc:
            hook(exc_type, value, tb)

    sys.excepthook = excepthook
    raise exc


def summary(reports: Sequence[BlockReport], threshold_ms: float, *, watched: bool) -> str:
    """The summary printed at exit: the blocks, grouped by the line that blocked."""
    if not watched:
        return (
            "offload watch: the script ran no event loop through asyncio.run(), "
            "asyncio.Runner, uvloop.run() or offload.run(), so none was watched."
        )
    if not reports:
        return f"offload watch: the event loop was never blocked longer than {threshold_ms:g} ms."
    places: dict[tuple[str, int | None] | None, list[BlockReport]] = {}
    for report in reports:
        places.setdefault(_place(report), []).append(report)
    worst = [max(group, key=_duration) for group in places.values()]
    worst.sort(key=_duration, reverse=True)
    lines = [
        f"offload watch: the event loop was blocked longer than {threshold_ms:g} ms "
        f"{_times(len(reports))}, at {_count(len(places), 'place')}; the worst: "
        f"{worst[0].duration * 1000:.0f} ms."
    ]
    for report in worst:
        lines += [
            "",
            _blocked_here(len(places[_place(report)])),
            textwrap.indent(report.format(), "  "),
        ]
    return "\n".join(lines)


def _place(report: BlockReport) -> tuple[str, int | None] | None:
    where = report.where
    return None if where is None else (where.filename, where.lineno)


def _blocked_here(n: int) -> str:
    return "Once here:" if n == 1 else f"{n} times here; the longest:"


def _duration(report: BlockReport) -> float:
    return report.duration


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


if __name__ == "__main__":
    main()
