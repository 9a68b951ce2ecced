"""A program that resolves host names and reads files through asyncio's default
executor, as many libraries do, switched over to offload with one line.

    python examples/switch_with_one_line.py            # asyncio's default executor
    python examples/switch_with_one_line.py --offload  # the same, after offload.install()

It prints the most threads alive at once, the threads still alive one second after the
work, and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sysconfig
import threading
import time
from pathlib import Path

import offload


def peak_threads_while(stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.0005):
        peak[0] = max(peak[0], threading.active_count() - 1)  # less this sampler


async def work(files: list[Path], lookups: int) -> int:
    loop = asyncio.get_running_loop()
    names = ("localhost", "127.0.0.1", "::1", socket.gethostname())
    resolved = [loop.getaddrinfo(names[i % len(names)], 443, type=socket.SOCK_STREAM) for i in range(lookups)]
    contents = [asyncio.to_thread(path.read_bytes) for path in files]
    results = await asyncio.gather(*resolved, *contents)
    return sum(len(r) for r in results)


async def main(use_offload: bool, files: list[Path], lookups: int) -> None:
    if use_offload:
        offload.install()  # the one line
    baseline = threading.active_count()
    stop, peak = threading.Event(), [baseline]
    sampler = threading.Thread(target=peak_threads_while, args=(stop, peak))
    sampler.start()
    started = time.perf_counter()
    total = await work(files, lookups)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    await asyncio.sleep(1.0)
    print(
        f"{'offload' if use_offload else 'asyncio default executor'}: {len(files)} files and "
        f"{lookups} lookups ({total:,} bytes and addresses) in {elapsed * 1e3:.0f} ms; "
        f"threads at most {peak[0] - baseline}, one second later {threading.active_count() - baseline}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--offload", action="store_true", help="call offload.install() first")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=200)
    arguments = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(stdlib.rglob("*.py"))[: arguments.files]
    asyncio.run(main(arguments.offload, sources, arguments.lookups))
