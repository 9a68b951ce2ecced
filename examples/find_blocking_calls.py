"""Find what to offload: a sqlite3 query that blocks the event loop, named by the watchdog.

The first run calls sqlite3 on the loop's thread, as an async handler easily does:
``offload.watch_loop()`` logs the block with the line that caused it. The second run
offloads the same query, and the loop stays free.

    python examples/find_blocking_calls.py
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

import offload

# Sums 1..n with a recursive query: a stand-in for a slow report query.
QUERY = "with recursive n(i) as (select 1 union all select i + 1 from n where i < ?) select sum(i) from n"


def total(n: int) -> int:
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        (value,) = db.execute(QUERY, (n,)).fetchone()
    return int(value)


async def on_the_loop(n: int) -> int:
    return total(n)  # every other task waits for the query


async def offloaded(n: int) -> int:
    return await offload.offload(total, n)


async def main(
    n: int = 1_000_000,
    on_block: Callable[[offload.BlockReport], object] | None = None,
    say: Callable[[str], None] = print,
) -> None:
    for query in (on_the_loop, offloaded):
        say(f"{query.__name__}: querying")
        async with offload.watch_loop(threshold=0.05, on_block=on_block):
            say(f"{query.__name__}: sum = {await query(n)}")


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
