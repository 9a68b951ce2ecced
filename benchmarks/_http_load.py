"""A load generator for the web benchmark: N clients, each on its own keep-alive HTTP/1.1
connection, sending GET requests one after the other for a while.

    python -m benchmarks._http_load --port 8000 --path '/sleep?ms=20' --clients 100 --seconds 5

Prints one JSON object: requests answered with 200, failures, and latency percentiles.
It runs in a process of its own, on uvloop where installed, and parses only what it
must (the status line and Content-Length), so that on a small machine it takes as little
of the CPU from the server it measures as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

__all__ = ["main"]


async def client(host: str, port: int, request: bytes, until: float, latencies: list[float]) -> int:
    """Sends requests until ``until``; returns how many failed (a connection that fails
    is opened again)."""
    failures = 0
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status.split(b" ", 2)[1:2] != [b"200"]:
                failures += 1
            else:
                latencies.append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()
    return failures


async def load(host: str, port: int, path: str, clients: int, seconds: float) -> dict[str, float]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    started = time.perf_counter()
    failures = await asyncio.gather(
        *(client(host, port, request, started + seconds, latencies) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": sum(failures),
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks._http_load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/sleep?ms=20")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    figures = runner(
        load(arguments.host, arguments.port, arguments.path, arguments.clients, arguments.seconds)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
