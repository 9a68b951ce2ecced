"""The benchmark runner: offload against every peer, side by side, in one run.

python -m benchmarks --quick        # about a minute on 2 cores (the default)
python -m benchmarks --full         # for publishing
python -m benchmarks --smoke        # tiny sizes: checks that everything runs
python -m benchmarks show RESULTS.json  # a saved run's tables and summary, again
python -m benchmarks compare A.json B.json
python -m benchmarks backends       # CPU work on threads, processes and Dask (see _backends.py)
python -m benchmarks web            # a FastAPI app under load: anyio's threads or offload's (_web.py)
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._implementations import IMPLEMENTATIONS
from ._report import Results, compare, markdown, plot, print_summary, print_tables
from ._runner import LOOPS, Plan, machine, measure
from ._scenarios import SCENARIOS


def run(arguments: argparse.Namespace, console: Console) -> None:
    plan = Plan(
        mode=arguments.mode,
        loops=tuple(arguments.loops),
        implementations=tuple(arguments.implementations),
        scenarios=tuple(s for s in SCENARIOS if s.name in arguments.scenarios),
    )
    results = Results(plan.mode, machine(plan.loops))
    measurements = list(plan.measurements())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=len(measurements))
        for m in measurements:
            progress.update(task, description=f"{m.scenario.name} · {m.implementation} · {m.loop}")
            metrics = measure(m.scenario, m.implementation, m.loop, plan.mode)
            results.add(m.loop, m.scenario.name, m.implementation, metrics)
            progress.advance(task)
    print_tables(results, console)
    print_summary(results, console)
    arguments.out.mkdir(parents=True, exist_ok=True)
    stem = arguments.out / f"{plan.mode}-{datetime.now():%Y%m%d-%H%M%S}"
    results.save(stem.with_suffix(".json"))
    saved = [stem.with_suffix(".json")]
    if any(s.name.startswith("batch_") for s in plan.scenarios):
        plot(results, stem.with_suffix(".png"))
        saved.append(stem.with_suffix(".png"))
    console.print("saved " + ", ".join(str(path) for path in saved))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    modes = parser.add_mutually_exclusive_group()
    for mode in ("smoke", "quick", "full"):
        modes.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode)
    parser.set_defaults(mode="quick")
    parser.add_argument("--loops", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    parser.add_argument(
        "--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS)
    )
    names = [s.name for s in SCENARIOS]
    parser.add_argument("--scenarios", nargs="+", choices=names, default=names)
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"), help="folder for JSON and PNG")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 132)
    if argv[:1] == ["compare"]:
        if len(argv) != 3:
            sys.exit("usage: python -m benchmarks compare BEFORE.json AFTER.json")
        compare(Results.load(Path(argv[1])), Results.load(Path(argv[2])), console)
    elif argv[:1] == ["show"]:
        if len(argv) != 2:
            sys.exit("usage: python -m benchmarks show RESULTS.json")
        results = Results.load(Path(argv[1]))
        print_tables(results, console)
        print_summary(results, console)
    elif argv[:1] == ["backends"]:
        from ._backends import main as backends

        backends(argv[1:], console)
    elif argv[:1] == ["web"]:
        from ._web import main as web

        web(argv[1:], console)
    elif argv[:1] == ["markdown"]:
        if len(argv) != 2:
            sys.exit("usage: python -m benchmarks markdown RESULTS.json")
        print(markdown(Results.load(Path(argv[1]))))
    else:
        run(parse(argv), console)


if __name__ == "__main__":
    main(sys.argv[1:])
