"""A connection cached in ``threading.local``, against a queue of connections that a
bound keeps small, on offload and on ``asyncio.to_thread``.

offload keeps at most one thread waiting for work: after a burst of calls, every thread
of the burst but one exits, and the next burst starts new ones. A connection cached per
thread is opened again on each new thread, and the one cached on a thread that ended
is out of the program's reach: nothing closes it. A queue of connections lives as long
as the program: a call takes one and puts it back, and a ``Limiter`` (an
``asyncio.Semaphore`` for ``asyncio.to_thread``) keeps the calls holding one at once,
hence the connections ever opened, to its bound.

    python examples/thread_local.py

It prints, for each way, the connections opened, those left unclosed at the end, the
threads that ran a call and the median time of a burst.
"""

from __future__ import annotations

import asyncio
import queue
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from offload import Limiter, offload


class Server:
    """Counts the connections opened to it and closed. A real server holds each open
    connection until the client closes it (or its socket is reclaimed, whenever that is)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the three fields below
        self.opened = 0
        self.closed = 0
        self.threads: set[threading.Thread] = set()  # those that ran a query

    def connect(self) -> Connection:
        with self._lock:
            self.opened += 1
        return Connection(self)

    def disconnect(self) -> None:
        with self._lock:
            self.closed += 1

    def ran_on(self, thread: threading.Thread) -> None:
        with self._lock:
            self.threads.add(thread)


class Connection:
    """Stands for a driver's connection: opening one is a handshake with the server."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def query(self, work: Work) -> None:
        self._server.ran_on(threading.current_thread())
        work()  # the query's round trip: blocking

    def close(self) -> None:
        self._server.disconnect()


# A way to make blocking queries from the loop: given the server and what a query does
# (Work), it makes the query a task awaits (Query) and what to run once all are done (Close).
Work = Callable[[], object]
Query = Callable[[], Awaitable[None]]
Close = Callable[[], None]
Way = Callable[[Server, Work], tuple[Query, Close]]


def per_thread(call: Callable[[Callable[[], None]], Awaitable[None]]) -> Way:
    """One connection per thread, cached in ``threading.local`` on the thread's first query."""

    def make(server: Server, work: Work) -> tuple[Query, Close]:
        cache = threading.local()

        def query() -> None:
            if not hasattr(cache, "connection"):
                cache.connection = server.connect()
            cache.connection.query(work)

        def close() -> None:
            pass  # each connection is in its own thread's cache, out of this thread's reach

        return lambda: call(query), close

    return make


def pooled(bound: int, use_offload: bool) -> Way:
    """A queue of connections, opened as needed, and at most ``bound`` queries at once."""

    def make(server: Server, work: Work) -> tuple[Query, Close]:
        idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()

        def query() -> None:
            try:
                connection = idle.get_nowait()
            except queue.Empty:  # fewer than ``bound`` open: every one is in use
                connection = server.connect()
            try:
                connection.query(work)
            finally:
                idle.put(connection)

        def close() -> None:
            while not idle.empty():
                idle.get_nowait().close()

        if use_offload:
            limiter = Limiter(bound)

            async def bounded() -> None:
                await limiter.run(query)

        else:
            semaphore = asyncio.Semaphore(bound)

            async def bounded() -> None:
                async with semaphore:
                    await asyncio.to_thread(query)

        return bounded, close

    return make


class Tally(NamedTuple):
    opened: int
    unclosed: int
    threads: int
    burst_ms: float


async def run_bursts(way: Way, bursts: int, size: int, gap: float, work: Work) -> Tally:
    """``bursts`` bursts of ``size`` queries gathered at once, ``gap`` seconds apart."""
    server = Server()
    query, close = way(server, work)
    latencies = []
    for _ in range(bursts):
        start = time.perf_counter()
        await asyncio.gather(*(query() for _ in range(size)))
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(gap)
    close()
    return Tally(
        server.opened,
        server.opened - server.closed,
        len(server.threads),
        statistics.median(latencies) * 1e3,
    )


def ways(bound: int) -> dict[str, Way]:
    return {
        "threading.local, offload()": per_thread(offload),
        "threading.local, asyncio.to_thread": per_thread(asyncio.to_thread),
        f"queue under Limiter({bound}), offload()": pooled(bound, use_offload=True),
        f"queue under Semaphore({bound}), asyncio.to_thread": pooled(bound, use_offload=False),
    }


def main(
    bursts: int = 40, size: int = 20, seconds: float = 0.002, gap: float = 0.02, bound: int = 10
) -> None:
    print(f"{bursts} bursts of {size} queries of {seconds * 1e3:g} ms, {gap * 1e3:g} ms apart")
    print(f"{'way':<45} {'opened':>7} {'unclosed':>9} {'threads':>8} {'burst ms':>9}")
    for name, way in ways(bound).items():
        # A loop of its own for each way: asyncio.to_thread's threads start afresh too.
        tally = asyncio.run(run_bursts(way, bursts, size, gap, lambda: time.sleep(seconds)))
        print(f"{name:<45} {tally.opened:>7} {tally.unclosed:>9} {tally.threads:>8} {tally.burst_ms:>9.2f}")


if __name__ == "__main__":
    main()
