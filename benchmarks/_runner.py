"""Runs the plan: every scenario, implementation and loop, interleaved, repeated."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from offload._base.lock import gil_enabled

from ._implementations import IMPLEMENTATIONS, open_implementation
from ._scenarios import SCENARIOS, Scenario

__all__ = [
    "LOOPS",
    "Measurement",
    "Plan",
    "installed_version",
    "interleaved_medians",
    "machine",
    "measure",
    "measurement_arguments",
    "mode_and_out",
]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop

REPETITIONS = {"smoke": 1, "quick": 3, "full": 7}

Figures = tuple[float, float, float]


def measurement_arguments(
    argv: list[str], module: str, doc: str, repeat: int, **defaults: float
) -> argparse.Namespace:
    """``argv`` read as the command line of a ``python -m benchmarks.<module>``
    measurement, described by its docstring's first line: ``--repeat`` (default
    ``repeat``), ``--loops``, and an option of each of ``defaults``' names, of its
    default's type."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--loops", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args(argv)


def interleaved_medians(
    loop: str,
    modes: tuple[str, str],
    measure: Callable[[str], Coroutine[Any, Any, Figures]],
    repeat: int,
) -> dict[str, Figures]:
    """An A/B in one process: ``measure(mode)`` for both ``modes``, ``repeat`` times, in
    alternating order, each time on a new ``loop``; the median of each figure."""
    figures: dict[str, list[Figures]] = {mode: [] for mode in modes}
    for repetition in range(repeat):
        for mode in modes if repetition % 2 == 0 else modes[::-1]:
            with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
                figures[mode].append(runner.run(measure(mode)))
    return {
        mode: (
            statistics.median(value[0] for value in values),
            statistics.median(value[1] for value in values),
            statistics.median(value[2] for value in values),
        )
        for mode, values in figures.items()
    }


CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Measurement:
    repetition: int
    loop: str
    scenario: Scenario
    implementation: str


@dataclass(frozen=True)
class Plan:
    mode: str
    loops: tuple[str, ...]
    implementations: tuple[str, ...] = IMPLEMENTATIONS
    scenarios: tuple[Scenario, ...] = SCENARIOS

    def measurements(self) -> Iterator[Measurement]:
        """Every measurement, implementations interleaved and their order rotated in
        each repetition, so that drift in the machine's speed spreads over all of them."""
        for repetition in range(REPETITIONS[self.mode]):
            for loop in self.loops:
                for scenario in self.scenarios:
                    if repetition >= scenario.repetitions.get(self.mode, REPETITIONS[self.mode]):
                        continue
                    if loop not in scenario.loops.get(self.mode, self.loops):
                        continue
                    names = self.implementations_of(scenario)
                    shift = repetition % len(names) if names else 0
                    for name in names[shift:] + names[:shift]:
                        yield Measurement(repetition, loop, scenario, name)

    def implementations_of(self, scenario: Scenario) -> tuple[str, ...]:
        """Those the run asks for, or, for a scenario of its own few, those of them it
        asks for and its own peers (a thread per call, for thread_start)."""
        if not scenario.implementations:
            return self.implementations
        return tuple(
            name
            for name in scenario.implementations
            if name in self.implementations or name not in IMPLEMENTATIONS
        )


def measure(scenario: Scenario, implementation: str, loop: str, mode: str) -> dict[str, float]:
    """One measurement, on a new loop (and, for some scenarios, in a new process)."""
    if scenario.subprocess:
        return _measure_in_child(scenario, implementation, loop, mode)
    return measure_here(scenario, implementation, loop, mode)


def measure_here(scenario: Scenario, implementation: str, loop: str, mode: str) -> dict[str, float]:
    async def main() -> dict[str, float]:
        async with open_implementation(implementation) as call:
            return await scenario.measure(call, **scenario.sizes[mode])

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(main())


def _measure_in_child(scenario: Scenario, implementation: str, loop: str, mode: str) -> dict[str, float]:
    request = json.dumps([scenario.name, implementation, loop, mode])
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", request],
        cwd=CHECKOUT,  # where -m finds the benchmarks, which are not installed with offload
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{scenario.name} on {implementation} failed in its child process:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def machine(loops: tuple[str, ...]) -> dict[str, Any]:
    """What the figures were measured on, recorded with every result."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "processor": _processor_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "gil": gil_enabled(),
        "loops": list(loops),
        "versions": {name: installed_version(name) for name in ("offload", "uvloop", "anyio")},
    }


def _processor_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or "unknown"


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def mode_and_out(prog: str, doc: str, modes: Iterable[str], argv: list[str]) -> argparse.Namespace:
    """The arguments of a runner's subcommand: ``--smoke``, ``--quick`` (the default) or
    ``--full`` (of ``modes``), and ``--out``, the folder for the JSON."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    for mode in modes:
        group.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode)
    parser.set_defaults(mode="quick")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"), help="folder for the JSON")
    return parser.parse_args(argv)
