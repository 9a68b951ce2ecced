"""Checked by mypy --strict in CI (never run): the public API's types."""

from __future__ import annotations

from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import assert_type

import offload


def parse(text: str, *, base: int = 10) -> int:
    return int(text, base)


async def check_offload_types() -> None:
    assert_type(await offload.offload(parse, "12"), int)
    assert_type(await offload.offload(parse, "ff", base=16), int)
    assert_type(offload.offload(parse, "1"), Awaitable[int])
    pool = offload.Pool(max_threads=4)
    assert_type(await pool.run(parse, "7"), int)
    assert_type(pool.stats(), offload.PoolStats)
    with pool as entered:
        assert_type(entered, offload.Pool)
    assert_type(offload.cancelled(), bool)
    await offload.offload(parse, 12)  # type: ignore[arg-type]
    await offload.offload(parse, "1", bass=2)  # type: ignore[call-arg]
    assert_type(await offload.offload(offload.abandonable(parse), "ff", base=16), int)
    await offload.offload(offload.abandonable(parse), 12)  # type: ignore[arg-type]


@offload.blocking
def read(path: str) -> bytes:
    return path.encode()


async def check_integration_types() -> None:
    assert_type(await read("x"), bytes)
    limiter = offload.Limiter(2)
    assert_type(await limiter.run(parse, "3"), int)

    @offload.blocking(limiter)
    def limited(n: int) -> str:
        return str(n)

    assert_type(await limited(1), str)
    assert_type(offload.call_on_loop(parse, "4"), int)

    async def double(n: int) -> int:
        return 2 * n

    assert_type(offload.run_on_loop(double, 2), int)
    executor = offload.Executor(max_workers=4)
    assert_type(executor.submit(parse, "5").result(), int)
    assert_type(offload.install(), offload.Executor)
    await read(3)  # type: ignore[arg-type]
    offload.call_on_loop(parse, 4)  # type: ignore[arg-type]


async def check_front_types() -> None:
    front = offload.via(ThreadPoolExecutor())
    assert_type(front, offload.ExecutorFront)
    assert_type(await front.run(parse, "1"), int)
    assert_type(await front(parse, "ff", base=16), int)
    processes = offload.ProcessPool(max_workers=2)
    assert_type(await processes.run(parse, "2"), int)
    cluster = offload.Cluster("tcp://127.0.0.1:8786")
    assert_type(await cluster(parse, "3"), int)
    await processes.run(parse, 3)  # type: ignore[arg-type]
    with offload.ProcessPool() as entered:
        assert_type(entered, offload.ProcessPool)
    await cluster(parse, "3", bass=2)  # type: ignore[call-arg]


def check_run_types() -> None:
    async def main() -> int:
        return 1

    assert_type(offload.run(main()), int)


async def check_watchdog_types() -> None:
    reports: list[offload.BlockReport] = []
    async with offload.watch_loop(0.1, on_block=reports.append) as watchdog:
        assert_type(watchdog, offload.LoopWatchdog)
    with offload.watch_loop() as watchdog:
        assert_type(watchdog, offload.LoopWatchdog)
    assert_type(reports[0].duration, float)
    assert_type(reports[0].format(), str)
    offload.watch_loop(on_block=print).start()
    offload.watch_loop("0.1")  # type: ignore[arg-type]
    offload.watch_loop(on_block=len)  # type: ignore[arg-type]
