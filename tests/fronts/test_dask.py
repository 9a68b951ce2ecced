"""offload.Cluster: calls run on a Dask cluster, against a real LocalCluster.

Most tests share one cluster whose worker runs in this process, on two threads, so
that the functions it runs can share state with the test (module globals below). One
test starts a cluster of two worker processes and kills them mid-call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import offload

from ..support import remote_work
from ..support.loops import AnyioRun, Runner
from ..support.polling import wait_until
from ..support.seams import executor_future, gather_in_one_wakeup

# Dask is an optional extra, left out where it does not install (the free-threaded build).
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
Client, KilledWorker, LocalCluster = distributed.Client, distributed.KilledWorker, distributed.LocalCluster


# Shared with the functions the in-process worker runs: reset by the `state` fixture.
_release = threading.Event()
_inside = threading.Semaphore(0)
_ran: list[str] = []
_both_threads = threading.Barrier(2, timeout=30)


def _meet() -> int:
    return _both_threads.wait()


def _hold() -> str:
    _inside.release()
    if not _release.wait(timeout=60):  # a hang guard only: the tests set it
        raise TimeoutError("the test never released the call")
    return "held"


def _record(name: str) -> str:
    _ran.append(name)
    return name


def _echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


@pytest.fixture
def state() -> Iterator[None]:
    _release.clear()
    _ran.clear()
    yield
    _release.set()  # so that a failing test leaves no worker thread waiting


def _threads_dask_keeps() -> set[threading.Thread]:
    # distributed.utils starts a pool of one thread ("Dask-Offload") on first use, to
    # (de)serialise messages off its event loop, and never shuts it down: it lives as
    # long as the process, whatever is closed, so it is the one exception to "no thread
    # left behind".
    return {t for t in threading.enumerate() if t.name.startswith("Dask-Offload")}


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalCluster]:
    """One worker in this process, with two threads. The threads of the cluster, of a
    client and of the worker all start here, before the first test (whose thread check
    then finds them there), and must all have exited once the module's tests are done,
    but for those Dask keeps for the life of the process."""
    before = set(threading.enumerate())
    # Without Dask's statistical profiler: from a thread of its own it walks the frames
    # of every thread in the process, which crashed the free-threaded interpreter (a
    # segfault in distributed/profile.py); nothing here needs its figures.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(
            processes=False,
            n_workers=1,
            threads_per_worker=2,
            dashboard_address=":0",  # any free port: with None, 8787, and a warning if taken
            silence_logs=logging.ERROR,
        )
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        front = offload.Cluster(client)

        async def start_every_thread() -> None:
            await asyncio.gather(front(_meet), front(_meet))  # one on each worker thread

        asyncio.run(start_every_thread())
        started = set(threading.enumerate()) - before
        yield cluster
    cluster.close()

    def left() -> set[threading.Thread]:
        return started & set(threading.enumerate()) - _threads_dask_keeps()

    wait_until(lambda: not left(), what=f"the cluster's threads to exit: {left()}")


@pytest.fixture
def client(local_cluster: LocalCluster) -> Iterator[Client]:
    with Client(local_cluster.scheduler_address, set_as_default=False) as client:
        yield client


@pytest.fixture
def cluster(client: Client) -> Iterator[offload.Cluster]:
    with offload.Cluster(client) as cluster:
        yield cluster


def test_results_and_exceptions_with_the_workers_traceback(
    run: Runner[None], cluster: offload.Cluster
) -> None:
    async def main() -> None:
        assert await cluster.run(divmod, 7, 2) == (3, 1)
        assert await cluster(lambda x: x * 2, 21) == 42  # cloudpickle sends lambdas too
        with pytest.raises(ValueError, match="on the worker") as info:
            await cluster.run(remote_work.fail, "on the worker")
        assert info.traceback[-1].name == "fail"

    run(main())


def test_every_call_runs_and_gets_its_keyword_arguments(run: Runner[None], cluster: offload.Cluster) -> None:
    async def main() -> None:
        # Identical calls: by default Dask would run one and give both its result.
        assert await asyncio.gather(cluster(_record, "twice"), cluster(_record, "twice")) == ["twice"] * 2
        assert _ran == ["twice", "twice"]
        # Names that Dask's submit() takes for itself reach the function.
        options = {"key": "k", "priority": 5, "pure": True}
        assert await cluster(_echo, **options) == options

    _ran.clear()
    run(main())


def test_a_queued_call_that_is_cancelled_never_runs(
    run: Runner[None], cluster: offload.Cluster, local_cluster: LocalCluster, state: None
) -> None:
    scheduler = local_cluster.scheduler
    [worker] = local_cluster.workers.values()

    def known(key: str) -> bool:
        return key in scheduler.tasks or key in worker.state.tasks  # type: ignore[union-attr]

    async def main() -> None:
        held = [cluster(_hold), cluster(_hold)]
        for _ in held:  # both worker threads are busy
            assert _inside.acquire(timeout=30)
        queued = cluster(_record, "queued")
        key = executor_future(cluster, queued).key
        # On the worker, waiting for a thread: a cancel that came while the call was on
        # its way there could find it in neither place, and the worker run it on arrival.
        wait_until(lambda: key in worker.state.tasks, what="the call to reach the worker")
        queued.cancel()
        wait_until(lambda: not known(key), what="the scheduler and the worker to drop the call")
        _release.set()
        assert await asyncio.gather(*held) == ["held", "held"]
        with pytest.raises(asyncio.CancelledError):
            await queued

    run(main())
    assert _ran == []


def test_results_finishing_together_wake_the_loop_once(
    run: Runner[None], cluster: offload.Cluster, drain_sizes: list[int]
) -> None:
    n = 8

    async def main() -> None:
        calls = [cluster.run(abs, -i) for i in range(n)]
        assert await gather_in_one_wakeup(calls, drain_sizes) == list(range(n))

    run(main())


def test_via_a_client_is_a_cluster_and_leaves_the_client_open(run: Runner[None], client: Client) -> None:
    async def main() -> None:
        with offload.via(client) as cluster:
            assert isinstance(cluster, offload.Cluster)
            assert cluster.client is client
            assert await cluster(abs, -5) == 5
        assert client.status == "running"
        with pytest.raises(offload.PoolClosedError):
            cluster(abs, -5)

    run(main())


def test_from_an_address_it_owns_its_client(run: Runner[None], local_cluster: LocalCluster) -> None:
    async def main() -> None:
        with offload.Cluster(local_cluster.scheduler_address) as cluster:
            assert await cluster(abs, -6) == 6
        assert cluster.client.status == "closed"

    run(main())


def test_shutting_down_without_waiting_cancels_the_calls_on_the_cluster(
    run: Runner[None], local_cluster: LocalCluster, state: None
) -> None:
    async def main() -> None:
        cluster = offload.Cluster(local_cluster.scheduler_address)
        held = cluster(_hold)
        assert _inside.acquire(timeout=30)
        cluster.shutdown(wait=False)  # closes its client, which cancels the call
        with pytest.raises(asyncio.CancelledError):
            await held

    run(main())


def test_shutdown_can_cancel_the_calls_on_the_cluster_and_wait_for_that(
    run: Runner[None], client: Client, state: None
) -> None:
    async def main() -> None:
        cluster = offload.Cluster(client)
        held = [cluster(_hold), cluster(_hold)]
        for _ in held:
            assert _inside.acquire(timeout=30)
        queued = cluster(_record, "queued")
        cluster.shutdown(wait=True, cancel_queued=True)  # Dask releases the running ones too
        for call in (*held, queued):
            with pytest.raises(asyncio.CancelledError):
                await call

    run(main())
    assert _ran == []


def test_cluster_needs_a_client_or_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match=r"needs a distributed\.Client or a scheduler address, not int"):
        offload.Cluster(8786)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'offload\[dask\]'"):
        offload.Cluster("tcp://127.0.0.1:8786")


def test_runs_under_anyio(anyio_run: AnyioRun, cluster: offload.Cluster) -> None:
    async def main() -> None:
        assert await cluster.run(abs, -3) == 3
        with pytest.raises(ValueError, match="under anyio"):
            await cluster.run(remote_work.fail, "under anyio")

    anyio_run(main)


def test_a_worker_that_dies_mid_call_is_retried_or_fails_clearly(
    run: Runner[None], local_cluster: LocalCluster, tmp_path: Path
) -> None:
    # Two worker processes, and a call may take down one of them (allowed-failures)
    # before the scheduler gives up on it. (local_cluster: Dask's lifelong threads start
    # there, not here.)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as processes,
        offload.Cluster(processes.scheduler_address) as cluster,
    ):

        async def main() -> None:
            # asyncio.timeout() only guards against a hang, should one come back.
            async with asyncio.timeout(120):
                marker = tmp_path / "first attempt"
                retried_in = await cluster(remote_work.die_once, marker)
                assert marker.exists()  # the first attempt killed its worker
                assert retried_in != os.getpid()
                with pytest.raises(offload.WorkerLostError, match=r"every Dask worker that ran die") as info:
                    await cluster(remote_work.die)
                assert isinstance(info.value.__cause__, KilledWorker)

        run(main())
        cluster.client.wait_for_workers(2, timeout=60)  # the nannies restart the dead ones
