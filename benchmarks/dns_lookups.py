"""Name lookups at once against this machine's resolver: how long, and how many wrong.

python -m benchmarks.dns_lookups 1 2 4 8 16 32     # a run for each number of threads

Each run looks up 200 distinct names that do not exist, all at once, through
``loop.getaddrinfo`` on a ``ThreadPoolExecutor`` of N threads, and counts the answers:
"Name or service not known" is right; "Temporary failure in name resolution" is the
resolver giving up on a lookup it could not answer in time. It needs a resolver (the
machine's network), and is not part of the test run. Its figures are behind
``offload.DEFAULT_DNS_LIMIT`` (docs/guides/switch.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

__all__ = ["main"]


async def lookups(threads: int, names: int) -> tuple[float, collections.Counter[str]]:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(threads)
    loop.set_default_executor(executor)

    async def one(name: str) -> str:
        try:
            await loop.getaddrinfo(name, 80)
        except socket.gaierror as error:
            return str(error.strerror)
        return "found"

    started = time.perf_counter()
    missing = [f"missing-{uuid.uuid4().hex[:12]}.example.com" for _ in range(names)]
    answers = await asyncio.gather(*(one(name) for name in missing))
    return time.perf_counter() - started, collections.Counter(answers)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dns_lookups", description=__doc__.split("\n")[0]
    )
    parser.add_argument("threads", type=int, nargs="+", help="a run for each number of threads")
    parser.add_argument("--names", type=int, default=200, help="lookups at once in a run")
    arguments = parser.parse_args(argv)
    for threads in arguments.threads:
        seconds, answers = asyncio.run(lookups(threads, arguments.names))
        print(f"{threads} threads: {seconds:.2f} s, {dict(answers)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
