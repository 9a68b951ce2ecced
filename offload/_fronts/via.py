"""``offload.via()``: a front for any executor the caller already has."""

from __future__ import annotations

import concurrent.futures
import sys
from typing import TYPE_CHECKING

from .dask import Cluster
from .front import ExecutorFront

if TYPE_CHECKING:
    import distributed

__all__ = ["via"]


def via(executor: concurrent.futures.Executor | distributed.Client, /) -> ExecutorFront:
    """A front that runs calls on ``executor``: ``await offload.via(executor)(fn, ...)``.

    Examples:
        ```python
        with ProcessPoolExecutor(max_workers=4) as executor:
            front = offload.via(executor)
            digests = await asyncio.gather(*(front(checksum, path) for path in paths))
        ```

    Given a ``distributed.Client``, it returns ``offload.Cluster(client)``. The executor
    stays yours to shut down. For processes, ``offload.ProcessPool`` also explains the
    errors of functions that cannot be sent, and recovers when a worker process dies.

    Args:
        executor: Any ``concurrent.futures.Executor``, or a ``distributed.Client``.

    Returns:
        The front: ``await front(fn, *args)`` or ``await front.run(fn, *args)``.

    Raises:
        TypeError: ``executor`` is neither an Executor nor a Dask client.
    """
    if isinstance(executor, concurrent.futures.Executor):
        return ExecutorFront(executor)
    dask = sys.modules.get("distributed")  # if it is not imported, this is no client of it
    if dask is not None and isinstance(executor, dask.Client):
        return Cluster(executor)
    raise TypeError(
        "offload.via() needs a concurrent.futures.Executor or a distributed.Client, "
        f"not {type(executor).__name__}"
    )
