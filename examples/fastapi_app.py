"""A FastAPI app whose endpoints block: ``def`` endpoints and a sync dependency, which
FastAPI runs through anyio's ``to_thread.run_sync``.

    OFFLOAD_WEB_MODE=offload uvicorn examples.fastapi_app:app

OFFLOAD_WEB_MODE says where the blocking calls run:

- ``offload``: ``offload.install_anyio()``, one line, and every ``def`` endpoint runs on
  offload's pool;
- ``anyio``: anyio as shipped (its default limiter of 40 tokens);
- ``anyio-400``: anyio with 400 tokens, as a server tuned for many clients sets it.

``/sleep?ms=20`` sleeps, ``/items/{n}`` queries an SQLite database through a sync
dependency that opens a connection per request; both answer with the thread's name.
``/server`` tells the load generator the server's threads and CPU time.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, FastAPI

import offload

MODE = os.environ.get("OFFLOAD_WEB_MODE", "offload")
MODES = ("offload", "anyio", "anyio-400")
if MODE not in MODES:
    raise SystemExit(f"OFFLOAD_WEB_MODE must be one of {', '.join(MODES)}, not {MODE!r}")
if MODE == "offload":
    offload.install_anyio()

DATABASE = Path(tempfile.gettempdir()) / f"offload-example-{os.getpid()}.sqlite3"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if MODE == "anyio-400":
        anyio.to_thread.current_default_thread_limiter().total_tokens = 400
    with sqlite3.connect(DATABASE) as db:
        db.execute("create table if not exists items (n integer primary key, square integer)")
        db.executemany("insert or replace into items values (?, ?)", ((n, n * n) for n in range(1000)))
    yield
    DATABASE.unlink(missing_ok=True)


app = FastAPI(lifespan=lifespan)


def database() -> Iterator[sqlite3.Connection]:
    # FastAPI opens it in one worker thread and runs the endpoint in another.
    connection = sqlite3.connect(DATABASE, check_same_thread=False)
    try:
        yield connection
    finally:
        connection.close()


@app.get("/sleep")
def sleep(ms: float = 20) -> dict[str, str]:
    time.sleep(ms / 1000)
    return {"thread": threading.current_thread().name}


@app.get("/items/{n}")
def item(n: int, db: Annotated[sqlite3.Connection, Depends(database)]) -> dict[str, int | str | None]:
    row = db.execute("select square from items where n = ?", (n,)).fetchone()
    return {"n": n, "square": row and row[0], "thread": threading.current_thread().name}


@app.get("/server")
async def server() -> dict[str, float | str]:
    return {
        "mode": MODE,
        "threads": threading.active_count(),
        "cpu_s": time.process_time(),
        "pool_completed": offload.default_pool().stats().completed,
        "pool_spawned": offload.default_pool().stats().spawned,
    }
