"""Checked by mypy --strict in CI (never run): the public API's types."""

from __future__ import annotations

from collections.abc import Awaitable
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
    assert_type(offload.cancelled(), bool)
    await offload.offload(parse, 12)  # type: ignore[arg-type]
    await offload.offload(parse, "1", bass=2)  # type: ignore[call-arg]
