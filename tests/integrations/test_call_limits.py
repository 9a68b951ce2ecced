"""Bounds per kind of call through the default executor: ``install()`` bounds name
lookups process-wide by default (``dns_limit``), and ``limits`` bounds any function."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from typing import Any

import pytest

import offload

from ..support.polling import wait_until
from ..support.pools import ConcurrencyProbe, Gate, MakePool

LOOKUPS = 200


class SlowResolver:
    """Stands in for ``socket.getaddrinfo``/``getnameinfo``: each lookup holds until
    released, and the probe counts how many run at once."""

    def __init__(self, release: threading.Event) -> None:
        self.probe = ConcurrencyProbe(release)

    def __call__(self, *args: Any) -> list[Any]:
        self.probe.task()
        return []


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch, gate: Gate) -> SlowResolver:
    fake = SlowResolver(gate())
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    monkeypatch.setattr(socket, "getnameinfo", fake)
    return fake


async def lookups_at_once(resolver: SlowResolver, running: int, **install: Any) -> offload.Executor:
    """LOOKUPS lookups at once (getaddrinfo, and getnameinfo for one in four): waits
    until ``running`` are inside the resolver, checks no more get in, releases them."""
    executor = offload.install(**install)
    loop = asyncio.get_running_loop()
    lookups = [
        loop.getnameinfo(("127.0.0.1", 80)) if n % 4 == 0 else loop.getaddrinfo(f"host-{n}.invalid", 80)
        for n in range(LOOKUPS)
    ]
    gathered = asyncio.gather(*lookups)
    await asyncio.to_thread(resolver.probe.wait_inside, running)
    # The rest are held by the limiter, neither running nor queued in the pool (which
    # runs this wait too, through asyncio.to_thread).
    pool = executor.pool
    await asyncio.to_thread(wait_until, lambda: (pool.stats().busy, pool.stats().queued) == (running + 1, 0))
    assert resolver.probe.peak == running
    resolver.probe.release.set()
    await gathered
    assert resolver.probe.peak == running
    return executor


def test_install_bounds_name_lookups_by_default(default_pool: offload.Pool, resolver: SlowResolver) -> None:
    asyncio.run(lookups_at_once(resolver, offload.DEFAULT_DNS_LIMIT))
    assert offload.DEFAULT_DNS_LIMIT == 4


def test_dns_limit_changes_the_bound(default_pool: offload.Pool, resolver: SlowResolver) -> None:
    asyncio.run(lookups_at_once(resolver, 7, dns_limit=7))


def test_dns_limit_none_lifts_it(default_pool: offload.Pool, resolver: SlowResolver) -> None:
    asyncio.run(lookups_at_once(resolver, LOOKUPS, dns_limit=None))


def test_debug_mode_lookups_are_bounded_too(default_pool: offload.Pool, resolver: SlowResolver) -> None:
    # In debug mode asyncio calls the loop's _getaddrinfo_debug, not socket.getaddrinfo.
    asyncio.run(lookups_at_once(resolver, 2, dns_limit=2), debug=True)


def test_the_bound_is_shared_by_every_loop(default_pool: offload.Pool, resolver: SlowResolver) -> None:
    async def lookups(inside: threading.Barrier) -> None:
        offload.install(dns_limit=4)
        loop = asyncio.get_running_loop()
        inside.wait()  # both loops installed before either looks up
        await asyncio.gather(*(loop.getaddrinfo(f"host-{n}.invalid", 80) for n in range(20)))

    inside = threading.Barrier(2, timeout=10)
    threads = [threading.Thread(target=asyncio.run, args=(lookups(inside),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    resolver.probe.wait_inside(4)
    wait_until(lambda: default_pool.stats().busy == 4)
    assert resolver.probe.peak == 4
    resolver.probe.release.set()
    for thread in threads:
        thread.join(10)
    assert resolver.probe.peak == 4


def test_limits_bound_any_function(default_pool: offload.Pool, gate: Gate) -> None:
    probe = ConcurrencyProbe(gate())
    shared = offload.Limiter(2, pool=default_pool)

    async def main() -> None:
        offload.install(limits={probe.task: 3, len: shared})
        loop = asyncio.get_running_loop()
        calls = asyncio.gather(*(loop.run_in_executor(None, probe.task) for _ in range(10)))
        await asyncio.to_thread(probe.wait_inside, 3)
        assert probe.peak == 3
        assert await asyncio.to_thread(len, "abc") == 3  # another kind: not held by these
        probe.release.set()
        await calls
        assert probe.peak == 3

    asyncio.run(main())


def test_limits_see_through_to_thread_and_partials(default_pool: offload.Pool, gate: Gate) -> None:
    # asyncio.to_thread submits functools.partial(Context.run, fn); Starlette and
    # FastAPI wrap calls in functools.partial(fn): a limit on fn bounds them all.
    probe = ConcurrencyProbe(gate())

    async def main() -> None:
        offload.install(limits={probe.task: 2})
        loop = asyncio.get_running_loop()
        calls = asyncio.gather(
            *(asyncio.to_thread(probe.task) for _ in range(3)),
            *(asyncio.to_thread(functools.partial(probe.task)) for _ in range(3)),
            *(loop.run_in_executor(None, functools.partial(probe.task)) for _ in range(3)),
        )
        try:
            await asyncio.to_thread(probe.wait_inside, 2)
            # The other 7 are held by the limiter, neither running nor queued in the pool
            # (which runs this wait too).
            stats = default_pool.stats
            await asyncio.to_thread(wait_until, lambda: (stats().busy, stats().queued) == (3, 0))
            assert probe.peak == 2
        finally:
            probe.release.set()  # else asyncio.run waits for them after a failure
        await calls
        assert probe.peak == 2

    asyncio.run(main())


def test_a_held_call_cancelled_never_runs_and_frees_nothing(default_pool: offload.Pool, gate: Gate) -> None:
    release = gate()
    ran: list[int] = []

    def call(n: int) -> None:
        ran.append(n)
        release.wait()

    limiter = offload.Limiter(1, pool=default_pool)

    async def main() -> None:
        offload.install(limits={call: limiter})
        loop = asyncio.get_running_loop()
        first = loop.run_in_executor(None, call, 1)
        second = loop.run_in_executor(None, call, 2)
        await asyncio.to_thread(wait_until, lambda: ran == [1])
        second.cancel()  # reaches the executor's future on the loop's next turn
        await asyncio.to_thread(wait_until, lambda: limiter.waiting == 0)
        release.set()
        await first
        await asyncio.to_thread(wait_until, lambda: limiter.running == 0)
        await loop.run_in_executor(None, call, 3)

    asyncio.run(main())
    assert ran == [1, 3]


def test_held_calls_run_when_the_pool_shuts_down(make_pool: MakePool, gate: Gate) -> None:
    # They were submitted before the shutdown, as a queued call was; the limit holds.
    pool = make_pool(max_threads=4)
    release = gate()
    limiter = offload.Limiter(1, pool=pool)
    executor = offload.Executor(pool=pool, limits={release.wait: limiter})
    running = executor.submit(release.wait)
    held = executor.submit(release.wait)
    wait_until(lambda: pool.stats().busy == 1)
    pool.shutdown(wait=False)
    release.set()
    assert running.result(timeout=10) is True
    assert held.result(timeout=10) is True
    assert limiter.running == 0


def test_shutdown_of_an_executor_with_limits_runs_every_call(gate: Gate) -> None:
    # As ThreadPoolExecutor does: the end of a with block waits for every call
    # submitted, those a limit still holds included, and runs them.
    release = gate()
    ran: list[int] = []
    lock = threading.Lock()
    peak, now = 0, 0

    def write(n: int) -> int:
        nonlocal peak, now
        with lock:
            now += 1
            peak = max(peak, now)
        if n == 0:
            release.wait()
        with lock:
            now -= 1
            ran.append(n)
        return n

    with offload.Executor(max_workers=4, limits={write: 1}) as executor:
        futures = [executor.submit(write, n) for n in range(4)]
        release.set()
    assert [future.result(timeout=0) for future in futures] == [0, 1, 2, 3]
    assert (sorted(ran), peak) == ([0, 1, 2, 3], 1)


@pytest.mark.parametrize(
    ("install", "error", "message"),
    [
        ({"dns_limit": 0}, ValueError, "dns_limit must be at least 1, not 0"),
        ({"dns_limit": "8"}, TypeError, "dns_limit must be an int or None, not str"),
        (
            {"limits": {len: 0}},
            ValueError,
            r"\(or a Limiter\) must be at least 1, not 0",
        ),
        (
            {"limits": {len: 2.5}},
            TypeError,
            r"len> \(or a Limiter\) must be an int, not float",
        ),
        ({"limits": {"len": 2}}, TypeError, "limits keys must be the functions to bound, not str 'len'"),
        ({"limits": [len]}, TypeError, "limits must map functions to ints or Limiters, not list"),
    ],
)
def test_bad_bounds_are_named(install: dict[str, Any], error: type[Exception], message: str) -> None:
    async def main() -> None:
        with pytest.raises(error, match=message):
            offload.install(**install)

    asyncio.run(main())


def test_a_limiter_on_another_pool_is_refused(make_pool: MakePool) -> None:
    other = offload.Limiter(2, pool=make_pool(name="other"))
    with pytest.raises(ValueError, match=r"the Limiter for <built-in function len> runs on .*other"):
        offload.Executor(limits={len: other})
