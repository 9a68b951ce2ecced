"""offload: run blocking calls from asyncio on an elastic pool of threads.

``await offload(fn, *args, **kwargs)`` runs ``fn`` in a thread of a pool that grows on
demand and never keeps more than one thread waiting for work. ``offload.watch_loop()``
finds the calls to offload: it names each call that blocks the event loop. CPU-bound
Python code goes to processes (``ProcessPool``), subinterpreters (``InterpreterPool``,
Python 3.14+) or a Dask cluster (``Cluster``) the same way.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from ._base.errors import OffloadError, PoolClosedError, ThreadStartError, WorkerLostError
from ._calls.body import abandonable
from ._fronts.dask import Cluster
from ._fronts.front import ExecutorFront
from ._fronts.interpreters import InterpreterPool
from ._fronts.processes import ProcessPool
from ._fronts.via import via
from ._inside.cancellation import cancelled, check_cancelled
from ._inside.loop_calls import call_on_loop, run_on_loop
from ._integrations.anyio import install_anyio, uninstall_anyio
from ._integrations.executor import Executor
from ._integrations.loops import DEFAULT_DNS_LIMIT, install, new_event_loop, run
from ._pool.pool import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_THREADS, Pool
from ._pool.stats import PoolStats
from ._submitters.blocking import blocking
from ._submitters.default import default_pool, offload, set_default_pool
from ._submitters.limiter import Limiter
from ._watchdog.report import BlockReport
from ._watchdog.watchdog import LoopWatchdog, watch_loop

__all__ = [
    "DEFAULT_DNS_LIMIT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_THREADS",
    "BlockReport",
    "Cluster",
    "Executor",
    "ExecutorFront",
    "InterpreterPool",
    "Limiter",
    "LoopWatchdog",
    "OffloadError",
    "Pool",
    "PoolClosedError",
    "PoolStats",
    "ProcessPool",
    "ThreadStartError",
    "WorkerLostError",
    "abandonable",
    "blocking",
    "call_on_loop",
    "cancelled",
    "check_cancelled",
    "default_pool",
    "install",
    "install_anyio",
    "new_event_loop",
    "offload",
    "run",
    "run_on_loop",
    "set_default_pool",
    "uninstall_anyio",
    "via",
    "watch_loop",
]

try:
    # The number is written once, in pyproject.toml; the installed metadata carries it.
    __version__ = _version("offload")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
del PackageNotFoundError, _version

# Show the public names where users import them from: offload.Pool, not offload._pool.pool.Pool.
for _name in __all__:
    _obj = globals()[_name]
    if callable(_obj):
        _obj.__module__ = __name__
del _name, _obj
