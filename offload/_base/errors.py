"""The exceptions offload raises.

    OffloadError                      anything offload itself refuses or cannot do
     ├── PoolClosedError (RuntimeError)   a call was submitted to a pool after shutdown()
     ├── ThreadStartError (RuntimeError)  the pool could not start a thread for a call
     └── WorkerLostError (RuntimeError)   the process running a call died (ProcessPool, Cluster)

Exceptions raised by an offloaded function are never wrapped: they reach the awaiter
as they were raised, with their traceback.
"""

from __future__ import annotations

__all__ = [
    "OffloadError",
    "PoolClosedError",
    "ThreadStartError",
    "WorkerLostError",
    "chained",
    "pool_closed_error",
]


class OffloadError(Exception):
    """Base class of the errors that offload raises itself."""


class PoolClosedError(OffloadError, RuntimeError):
    """A call was submitted to a pool that has been shut down.

    Calls already submitted before ``shutdown()`` still run to completion.
    """


class ThreadStartError(OffloadError, RuntimeError):
    """The pool could not start a thread, and no thread of it was left to run the call.

    The original error (usually ``RuntimeError: can't start new thread``) is chained as
    ``__cause__``. The pool stays usable: later calls try to start a thread again.
    """


class WorkerLostError(OffloadError, RuntimeError):
    """The process running a call died before the call finished (killed, out of memory,
    ``os._exit()``), so the call has no outcome.

    Raised by ``ProcessPool`` (which then runs later calls in new processes) and by
    ``Cluster`` (once Dask has given up retrying the call on other workers). The
    executor's own error (``BrokenProcessPool``, ``KilledWorker``) is chained as
    ``__cause__``.
    """


def chained(error: BaseException, cause: BaseException) -> BaseException:
    """``error`` with ``cause`` as its ``__cause__``, as ``raise error from cause`` sets it."""
    error.__cause__ = cause
    return error


def pool_closed_error(name: str, *, exiting: bool) -> PoolClosedError:
    """The error for a call submitted to the pool ``name`` after its shutdown, or while
    the interpreter exits (``exiting``)."""
    if exiting:
        return PoolClosedError(
            f"pool {name!r} takes no new call: the interpreter is exiting, and it "
            "runs only the calls submitted before"
        )
    return PoolClosedError(
        f"pool {name!r} is shut down; submit calls to another Pool, "
        "or call offload.set_default_pool() with a new one"
    )
