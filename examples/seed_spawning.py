"""The second program of the 2006 Lua note, on offload.

dopey starts a new sleepy coroutine every round. As in the original, which "ends up
using a lot of pthreads in sequence, but only ever two at a time", threads come and go:
when dopey's sleep ends while sleepy's thread is idle, dopey's thread exits rather than
become a second waiting thread, yet no more than two pool threads are ever alive.

    python examples/seed_spawning.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from offload import default_pool, offload


async def sleepy(unit: float, say: Callable[[str], None]) -> None:
    await offload(time.sleep, 1 * unit)
    say("sleepy")


async def dopey(unit: float, rounds: int, say: Callable[[str], None]) -> None:
    async with asyncio.TaskGroup() as tasks:
        for _ in range(rounds):
            say("dopey")
            tasks.create_task(sleepy(unit, say))  # ready(coroutine.create(sleepy))
            await offload(time.sleep, 2 * unit)


async def main(unit: float = 1.0, rounds: int = 4, say: Callable[[str], None] = print) -> None:
    await dopey(unit, rounds, say)


if __name__ == "__main__":
    asyncio.run(main(unit=0.5))
    stats = default_pool().stats()
    print(f"pool threads started: {stats.spawned}, most alive at once: {stats.peak_threads}")
