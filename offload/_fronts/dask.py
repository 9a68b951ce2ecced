"""``offload.Cluster``: calls run on a Dask cluster, awaited as offload's.

When one machine is not enough, a front (see _fronts/front.py) on a ``distributed.Client``
sends each call to the cluster's workers. Dask is optional (``offload[dask]``) and
imported only when a Cluster is made.

The client is a synchronous one: it runs its own event loop in a thread of its own, so
the cluster's traffic never competes with the loop that awaits the calls. That loop
fetches each result from its worker as soon as it is ready and puts the call in the
awaiting loop's inbox.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from typing import TYPE_CHECKING, Any

from .._base.errors import WorkerLostError, chained
from .._calls.body import describe
from .front import ExecutorFront

if TYPE_CHECKING:
    from collections.abc import Callable

    import distributed

__all__ = ["Cluster"]


class Cluster(ExecutorFront):
    """Runs calls on a Dask cluster; await them as ``offload()``'s.

    Examples:
        ```python
        async with offload.Cluster("tcp://scheduler:8786") as cluster:
            scores = await asyncio.gather(*(cluster.run(score, chunk) for chunk in chunks))
        ```

    Functions and arguments travel with cloudpickle, so lambdas and local functions can
    be sent too. Every call runs (Dask's ``pure=False``). If a worker dies while running
    a call, the scheduler runs it again on another worker; once the call has taken down
    ``distributed.scheduler.allowed-failures`` + 1 workers, its awaiter gets
    ``WorkerLostError``. Cancelling an awaiter cancels the call on the cluster: one that
    has not started never runs.

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread.

    Args:
        client_or_address: A ``distributed.Client`` (it stays yours: ``shutdown()``
            leaves it open), or a scheduler's address, for which the Cluster makes a
            client of its own and closes it on ``shutdown()``. Connecting blocks until the
            scheduler answers (up to ``distributed.comm.timeouts.connect``), so make the
            Cluster at start-up rather than in a busy loop.

    Raises:
        ImportError: Dask's distributed is not installed (``pip install 'offload[dask]'``).
        TypeError: ``client_or_address`` is neither a client nor a string.
    """

    def __init__(self, client_or_address: distributed.Client | str, /) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise ImportError(
                "offload.Cluster needs Dask's distributed: pip install 'offload[dask]'"
            ) from exc
        if isinstance(client_or_address, str):
            # Not the default client: offload's calls must not change where the program's
            # own Dask computations go.
            client = distributed.Client(  # type: ignore[no-untyped-call]  # not annotated
                client_or_address, set_as_default=False
            )
        elif isinstance(client_or_address, distributed.Client):
            client = client_or_address
        else:
            raise TypeError(
                "offload.Cluster needs a distributed.Client or a scheduler address, "
                f"not {type(client_or_address).__name__}"
            )
        self._owns_client = client is not client_or_address
        self._setup(client)

    @property
    def client(self) -> distributed.Client:
        """The Dask client the calls go through."""
        client: distributed.Client = self._executor
        return client

    def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None:
        """Stops the front: later calls raise PoolClosedError.

        Args:
            wait: Whether to block until every call submitted through it has finished.
                Without it, a client the Cluster made is closed at once, which cancels
                the calls still on the cluster.
            cancel_queued: Whether to cancel the calls still on the cluster (Dask
                releases running ones too); their awaiters get ``asyncio.CancelledError``.
        """
        super().shutdown(wait, cancel_queued=cancel_queued)
        if self._owns_client:
            self.client.close()  # type: ignore[no-untyped-call]  # not annotated

    def _send(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # pure=False: by default Dask gives identical calls one key, so they would run
        # once and cancelling one would cancel all. The keyword arguments travel in a
        # partial, so that those named like submit()'s own (key, priority, retries...)
        # reach the function.
        target = functools.partial(fn, **kwargs) if kwargs else fn
        return self.client.submit(target, *args, pure=False)

    def _watch(self, future: Any, settle: Callable[[Any, BaseException | None], None]) -> None:
        # Not Dask's done-callbacks: they all run on one thread, which would then fetch the
        # results from the workers one at a time, a round trip each, so that a batch of
        # results would trickle in. The client's own loop fetches them, all at once.
        # (Client.loop is typed optional, but a client has one from the start.)
        self.client.loop.add_callback(self._fetch, future, settle)  # type: ignore[union-attr]

    async def _fetch(self, future: Any, settle: Callable[[Any, BaseException | None], None]) -> None:
        try:
            value = await self.client.gather(future, asynchronous=True)  # type: ignore[no-untyped-call]
        except concurrent.futures.CancelledError:  # Dask's, for a call cancelled on the cluster
            settle(None, asyncio.CancelledError("the cluster cancelled the call"))
        except BaseException as exc:  # with the worker's traceback
            settle(None, exc)
        else:
            settle(value, None)

    def _explain(self, error: BaseException, fn: Callable[..., Any]) -> BaseException:
        from distributed import KilledWorker

        if isinstance(error, KilledWorker):
            return chained(
                WorkerLostError(
                    f"every Dask worker that ran {describe(fn)}() died while running it (killed, "
                    "out of memory, os._exit()), so the scheduler gave up on the call"
                ),
                error,
            )
        return error

    def _cancel_future(self, future: Any) -> bool:
        # Future.cancel() blocks until the client's own loop has sent the request, and
        # this may be the awaiting loop's thread: hand the request to the client's loop
        # instead. Whether the call had started is the scheduler's to know, later.
        client = self.client
        client.loop.add_callback(client.cancel, [future], asynchronous=True)  # type: ignore[union-attr]
        return False
