"""A FastAPI app under load: anyio's threads against offload's, as a server sees them.

python -m benchmarks web --quick     # about a minute on 2 cores: uvloop, one run each
python -m benchmarks web --full      # asyncio and uvloop, three runs each, for publishing
python -m benchmarks web --smoke     # tiny: checks that everything runs

The app is examples/fastapi_app.py, served by uvicorn in a process of its own, its
``def`` endpoint ``/sleep?ms=20`` loaded by N clients (keep-alive connections) from
another process (_http_load.py), for each of: anyio as shipped (40 tokens), anyio with
400 tokens, and ``offload.install_anyio()``. For each: requests per second, latency
p50 and p99, the server's CPU time per request (all its threads), its threads during the
load (the most seen) and 2 s after it, and failed requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from ._runner import CHECKOUT, installed_version, machine, mode_and_out

__all__ = ["MODES", "main", "served", "server_figures"]

MODES = ("anyio", "anyio-400", "offload")
BASELINE = "anyio"
PATH = "/sleep?ms=20"
SETTLE_S = 2.0  # the threads "after the load" are counted this long after it


@dataclass(frozen=True)
class Size:
    clients: tuple[int, ...]
    seconds: float
    warm_up: float
    repetitions: int
    loops: tuple[str, ...]


SIZES = {
    "smoke": Size(clients=(10,), seconds=0.5, warm_up=0.2, repetitions=1, loops=("asyncio",)),
    "quick": Size(clients=(10, 100, 400), seconds=3.0, warm_up=1.0, repetitions=1, loops=("uvloop",)),
    "full": Size(
        clients=(10, 100, 400), seconds=5.0, warm_up=2.0, repetitions=3, loops=("asyncio", "uvloop")
    ),
}


@contextlib.contextmanager
def served(mode: str, loop: str = "asyncio", timeout: float = 60.0) -> Iterator[int]:
    """Serves the example app with uvicorn in a child process; yields its port.

    uvicorn picks a free port (``--port 0``) and names it in its log, which goes to a
    file: a pipe nobody reads would stall the server once full.
    """
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.fastapi_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    command += ["--loop", loop, "--no-access-log", "--backlog", "2048"]
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(
            command, cwd=CHECKOUT, env={**os.environ, "OFFLOAD_WEB_MODE": mode}, stderr=log, text=True
        )
        try:
            yield _port_of(server, log, timeout)
        finally:
            server.terminate()
            try:
                server.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _port_of(server: subprocess.Popen[str], log: IO[str], timeout: float) -> int:
    """The port the server says it listens on, once it answers there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read()
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}: {text}")
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", text)
        if found:
            port = int(found.group(1))
            with contextlib.suppress(OSError):
                server_figures(port)
                return port
        time.sleep(0.05)
    raise TimeoutError(f"the server did not answer within {timeout} s")


def server_figures(port: int) -> dict[str, Any]:
    """The server's own account: its mode, threads, CPU seconds, calls on offload's pool."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server", timeout=10) as response:
        figures: dict[str, Any] = json.load(response)
    return figures


def load(port: int, clients: int, seconds: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "benchmarks._http_load", "--port", str(port), "--path", PATH]
    command += ["--clients", str(clients), "--seconds", str(seconds)]
    return subprocess.Popen(command, cwd=CHECKOUT, stdout=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = process.communicate()
    if process.returncode:
        raise RuntimeError(f"the load generator failed with {process.returncode}")
    figures: dict[str, float] = json.loads(out)
    return figures


def measure(mode: str, loop: str, clients: int, size: Size) -> dict[str, float]:
    with served(mode, loop) as port:
        finished(load(port, clients, size.warm_up))
        before = server_figures(port)
        running = load(port, clients, size.seconds)
        threads_during = before["threads"]
        while running.poll() is None:
            threads_during = max(threads_during, server_figures(port)["threads"])
            time.sleep(0.2)
        figures = finished(running)
        after = server_figures(port)
        time.sleep(SETTLE_S)
        settled = server_figures(port)
    if mode == "offload" and after["pool_completed"] == before["pool_completed"]:
        raise RuntimeError("install_anyio() is on, yet no call ran on offload's pool")
    return {
        **figures,
        "server_cpu_us_per_request": (after["cpu_s"] - before["cpu_s"]) / max(figures["requests"], 1) * 1e6,
        "threads_during": threads_during,
        "threads_started_per_request": (after["pool_spawned"] - before["pool_spawned"])
        / max(figures["requests"], 1),
        "threads_after": settled["threads"],
    }


COLUMNS = {
    "requests_per_s": ("req/s", "{:,.0f}"),
    "p50_ms": ("p50 ms", "{:.1f}"),
    "p99_ms": ("p99 ms", "{:.1f}"),
    "server_cpu_us_per_request": ("server CPU/req µs", "{:,.0f}"),
    "threads_during": ("threads during", "{:.0f}"),
    "threads_started_per_request": ("threads started/req", "{:.3f}"),
    "threads_after": (f"threads {SETTLE_S:.0f} s after", "{:.0f}"),
    "failures": ("failed", "{:.0f}"),
}

Values = dict[tuple[str, int, str, str], list[float]]  # loop, clients, mode, metric


def print_table(values: Values, size: Size, title: str, console: Console) -> None:
    table = Table(title=title, title_justify="left")
    for heading in (
        "loop",
        "clients",
        "anyio.to_thread on",
        *(c[0] for c in COLUMNS.values()),
        "req/s vs anyio",
    ):
        table.add_column(heading, justify="left" if heading in ("loop", "anyio.to_thread on") else "right")
    for loop in size.loops:
        for clients in size.clients:
            for mode in MODES:
                medians = {m: statistics.median(values[loop, clients, mode, m]) for m in COLUMNS}
                baseline = statistics.median(values[loop, clients, BASELINE, "requests_per_s"])
                cells = [f.format(medians[m]) for m, (_, f) in COLUMNS.items()]
                table.add_row(
                    loop, str(clients), mode, *cells, f"{medians['requests_per_s'] / baseline:.2f}x"
                )
    console.print(table)


def main(argv: list[str], console: Console) -> None:
    arguments = mode_and_out("python -m benchmarks web", __doc__, SIZES, argv)
    size = SIZES[arguments.mode]
    loops = tuple(loop for loop in size.loops if loop != "uvloop" or _has_uvloop()) or ("asyncio",)
    size = Size(size.clients, size.seconds, size.warm_up, size.repetitions, loops)
    values: Values = defaultdict(list)
    for repetition in range(size.repetitions):
        for loop in size.loops:
            for clients in size.clients:
                # Rotated each repetition, so that drift in the machine spreads over all.
                for mode in MODES[repetition % 3 :] + MODES[: repetition % 3]:
                    console.print(
                        f"run {repetition + 1}/{size.repetitions}: {loop}, {clients} clients, {mode}"
                    )
                    for metric, value in measure(mode, loop, clients, size).items():
                        values[loop, clients, mode, metric].append(value)
    info = machine(size.loops)
    info["versions"].update(
        {name: installed_version(name) for name in ("fastapi", "starlette", "uvicorn", "httptools")}
    )
    title = (
        f"web: FastAPI def endpoint {PATH} under uvicorn, {arguments.mode} run, {info['cpus']} CPUs, "
        f"Python {info['python']}, {info['date']}; medians of {size.repetitions}"
    )
    print_table(values, size, title, console)
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"web-{arguments.mode}-{datetime.now():%Y%m%d-%H%M%S}.json"
    rows = [
        {
            "loop": loop,
            "clients": clients,
            "mode": mode,
            "metric": metric,
            "values": v,
            "median": statistics.median(v),
        }
        for (loop, clients, mode, metric), v in values.items()
    ]
    path.write_text(
        json.dumps({"mode": arguments.mode, "machine": info, "path": PATH, "results": rows}, indent=1)
    )
    console.print(f"saved {path}")


def _has_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None
