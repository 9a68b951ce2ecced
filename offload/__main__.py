"""``python -m offload watch [--threshold MS] -- script.py [args ...]``

Runs a script as ``python script.py args ...`` would, with ``offload.watch_loop()`` on
every event loop it runs through ``asyncio.run()``, ``asyncio.Runner``, ``uvloop.run()``
or ``offload.run()`` (all of which run their main coroutine with ``asyncio.Runner.run``),
and prints a summary of the blocks seen to stderr when it exits: how many, the worst, and
the stack of each place that blocked. A loop run otherwise (``loop.run_until_complete()``)
is not watched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import runpy
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from ._watchdog import BlockReport, milliseconds, run_watched

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the command line; the script's own exit status or exception passes through."""
    args = _parser().parse_args(argv)
    reports: list[BlockReport] = []
    runs: list[asyncio.Runner] = []
    try:
        with _loops_watched(args.threshold / 1000, reports.append, runs.append):
            _run_script(args.script, args.args)
    finally:
        print(summary(reports, args.threshold, watched=bool(runs)), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offload", description="offload's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    watch = commands.add_parser(
        "watch",
        help="run a script with the event loop watched, and summarise the calls that blocked it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("--threshold", metavar="MS", type=milliseconds, default=50.0, help="default: 50")
    watch.add_argument("script", help="the Python script to run")
    watch.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return parser


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
