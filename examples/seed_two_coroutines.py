"""The first program of the 2006 Lua note, on offload.

Two coroutines sleep in blocking calls; the event loop runs neither while they sleep.
As in the original, which "ends up using just two pthreads", the pool uses exactly two
threads: each finished sleep's thread returns to the loop with its outcome, and the
coroutine's next sleep, made at once, takes it back.

    python examples/seed_two_coroutines.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from offload import default_pool, offload


async def sleepy(unit: float, rounds: int, say: Callable[[str], None]) -> None:
    await offload(time.sleep, 1 * unit)
    for _ in range(rounds):
        say("sleepy")
        await offload(time.sleep, 2 * unit)


async def dopey(unit: float, rounds: int, say: Callable[[str], None]) -> None:
    for _ in range(rounds):
        say("dopey")
        await offload(time.sleep, 2 * unit)


async def main(unit: float = 1.0, rounds: int = 3, say: Callable[[str], None] = print) -> None:
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(sleepy(unit, rounds, say))  # ready(coroutine.create(sleepy))
        tasks.create_task(dopey(unit, rounds, say))


if __name__ == "__main__":
    asyncio.run(main(unit=0.5))
    stats = default_pool().stats()
    print(f"pool threads started: {stats.spawned}, most alive at once: {stats.peak_threads}")
