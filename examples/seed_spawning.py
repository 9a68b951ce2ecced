"""The second program of the 2006 Lua note, on offload.

dopey starts a new sleepy coroutine every round. The original "ends up using a lot of
pthreads in sequence, but only ever two at a time". On offload it uses two threads in
all: each sleepy's thread, its coroutine done, becomes the idle thread, which the next
sleepy takes; dopey's thread returns to the loop with its outcome, and dopey's next
sleep, made at once, takes it back rather than start another.

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
