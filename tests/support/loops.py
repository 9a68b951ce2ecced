"""The event loops every test runs on: asyncio's, uvloop's where installed, and anyio's
backends (asyncio, asyncio with uvloop, trio)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop has no wheel for free-threaded builds
    pass
else:
    LOOP_FACTORIES["uvloop"] = uvloop.new_event_loop

Runner = Callable[[Coroutine[Any, Any, T]], T]
AnyioRun = Callable[..., Any]  # the anyio_run fixture: runs an async function on a backend


ANYIO_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {"asyncio": ("asyncio", {}), "trio": ("trio", {})}
if "uvloop" in LOOP_FACTORIES:
    ANYIO_BACKENDS["asyncio+uvloop"] = ("asyncio", {"use_uvloop": True})
