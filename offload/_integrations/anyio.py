"""anyio's worker threads taken from an offload pool: ``install_anyio()``.

``anyio.to_thread.run_sync`` runs its calls on threads of anyio's own (on asyncio) or
trio's (on trio), and through it so do Starlette's and FastAPI's ``run_in_threadpool``,
their sync endpoints and dependencies, ``FileResponse``, ``anyio.Path`` and
``anyio.open_file``. ``install_anyio()`` swaps one method on each of anyio's backend
classes, ``run_sync_in_worker_thread``, so that the call runs on an offload pool thread:

- asyncio (and uvloop): the method keeps anyio's steps (a checkpoint, a token of the
  limiter, a cancel scope shielded unless ``abandon_on_cancel``) and sets the pool
  thread up as anyio sets up its own worker (the loop's token and the host task's
  cancel scope in anyio's thread-locals), so that ``anyio.from_thread.run``,
  ``run_sync`` and ``check_cancelled`` work inside the call.
- trio: anyio's own method runs unchanged, through ``trio.to_thread.run_sync``, which
  keeps trio's semantics; only the thread is offload's. trio hands the thread's job to
  ``start_thread_soon``, which ``install_anyio()`` routes to the pool for the calls made
  through anyio (a context variable marks them), so plain ``trio.to_thread.run_sync``
  keeps trio's thread cache. anyio's default limiter, which on trio wraps trio's own,
  is one of anyio's own in each run instead, so plain trio keeps its tokens too. A call
  trio abandons (``abandon_on_cancel=True``) is marked abandoned in the pool: exit does
  not wait for it, as trio's daemon threads do not hold up exit.

These are anyio's and trio's internals, not their APIs: ``install_anyio()`` checks every
one it uses before it changes anything, and refuses an anyio outside the versions it
knows, so it never patches half-way.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import threading
from typing import Any

from .._base.checks import count
from .._base.errors import PoolClosedError
from .._pool.pool import Pool
from .anyio_worker import (
    Installed,
    activate,
    active,
    limiter_per_trio_run,
    limiter_with_tokens,
    run_on_asyncio,
    run_routed_on_trio,
    run_sync_in_worker_thread,
    start_thread_soon_for,
)

__all__ = ["install_anyio", "uninstall_anyio"]

#: The anyio versions whose internals install_anyio() knows: from the first with
#: ``from_thread.check_cancelled`` on asyncio (4.4) to the last 4.x.
SUPPORTED_ANYIO = ((4, 4), (5, 0))

_lock = threading.Lock()  # install_anyio() and uninstall_anyio() one at a time


def install_anyio(pool: Pool | None = None, *, tokens: int | None = None) -> None:
    """Runs ``anyio.to_thread.run_sync`` calls on an offload pool, process-wide.

    Examples:
        ```python
        offload.install_anyio()  # before the app starts: FastAPI's def endpoints now
                                 # run on offload's default pool
        ```

    Every run of anyio's asyncio backend (with or without uvloop) and trio backend is
    covered, and so is what is built on ``to_thread.run_sync``: Starlette's and FastAPI's
    ``run_in_threadpool``, sync endpoints and dependencies, ``FileResponse`` and
    ``StaticFiles``, ``anyio.Path``, ``anyio.open_file``. anyio's semantics stay: the
    ``limiter`` argument and the default ``CapacityLimiter`` (its tokens count calls
    running or queued in the pool, not threads), ``abandon_on_cancel``, the caller's
    contextvars, and ``anyio.from_thread.run``, ``run_sync`` and ``check_cancelled``
    inside the call. A call still queued in the pool when its awaiter is cancelled (with
    ``abandon_on_cancel=True``) never runs.

    Calling it again changes the pool or the tokens; ``uninstall_anyio()`` undoes it.

    Args:
        pool: The pool to run on; by default the default pool, as it is at each call
            (see ``set_default_pool()``).
        tokens: The total tokens of anyio's default limiter, set once in each event
            loop run when the limiter is first used: by default the pool's
            ``max_threads``, since the pool, which keeps no idle thread but one, is the
            bound that matters; 40 keeps anyio's own number. On trio, anyio's calls
            get a limiter of their own with these tokens; trio's own default limiter,
            which plain ``trio.to_thread.run_sync`` uses, keeps its 40.

    Raises:
        RuntimeError: The installed anyio is not a version this offload knows, or lacks
            one of the internals it uses (the message names it); nothing is changed.
        TypeError: ``pool`` is not a Pool, or ``tokens`` not an int.
        ValueError: ``tokens`` is not positive.
        PoolClosedError: ``pool`` has been shut down.
    """
    if pool is not None and not isinstance(pool, Pool):
        raise TypeError(f"install_anyio() pool must be an offload.Pool, not {type(pool).__name__}")
    if pool is not None and pool.closed:
        raise PoolClosedError(f"install_anyio() needs an open pool; {pool!r} is shut down: make a new one")
    count(tokens, "install_anyio() tokens", none=True)
    with _lock:
        installed = active()
        if installed is not None:
            installed.pool, installed.tokens = pool, tokens
            return
        installed = _check_anyio(pool, tokens)
        _patch(installed)
        activate(installed)


def uninstall_anyio() -> None:
    """Puts anyio back as it was before ``install_anyio()``; a no-op if not installed.

    Calls already submitted finish on the pool. Default limiters whose tokens were set
    keep them for the rest of their event loop's run.
    """
    with _lock:
        installed = active()
        if installed is None:
            return
        for owner, attribute, value in reversed(installed.originals):
            setattr(owner, attribute, value)
        activate(None)


# --- the checks and the patch ---


def _check_anyio(pool: Pool | None, tokens: int | None) -> Installed:
    """Everything install_anyio() needs from anyio, looked up before anything changes."""
    try:
        version = importlib.metadata.version("anyio")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("offload.install_anyio() needs anyio: pip install anyio") from None
    if not SUPPORTED_ANYIO[0] <= _major_minor(version) < SUPPORTED_ANYIO[1]:
        low, high = SUPPORTED_ANYIO
        raise RuntimeError(
            f"offload.install_anyio() supports anyio {low[0]}.{low[1]} up to (not including) "
            f"{high[0]}.{high[1]}; anyio {version} is installed: install a supported anyio, "
            "or use offload's own API (await offload(fn)) instead"
        )
    eventloop = _lookup(version, "anyio._core._eventloop", "claim_worker_thread", "threadlocals")
    backend, cancel_scope = _lookup(version, "anyio._backends._asyncio", "AsyncIOBackend", "CancelScope")
    _check_method(
        version, backend, "run_sync_in_worker_thread", ("func", "args", "abandon_on_cancel", "limiter")
    )
    _check_method(version, backend, "current_default_thread_limiter", ())
    _check_method(version, backend, "checkpoint", ())
    if not hasattr(cancel_scope(), "_parent_scope"):  # the scope check_cancelled() reads
        raise _unsupported(version, "anyio._backends._asyncio.CancelScope has no _parent_scope")
    try:
        import sniffio
    except ImportError:
        set_library = None
    else:
        set_library = sniffio.current_async_library_cvar.set
    return Installed(
        pool=pool,
        tokens=tokens,
        originals=[],
        claim_worker_thread=eventloop[0],
        threadlocals=eventloop[1],
        asyncio_backend=backend,
        cancel_scope=cancel_scope,
        set_library=set_library,
    )


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def _lookup(version: str, module_name: str, *names: str) -> list[Any]:
    try:
        module = importlib.import_module(module_name)
        return [getattr(module, name) for name in names]
    except (ImportError, AttributeError) as exc:
        raise _unsupported(version, f"{module_name}: {exc}") from None


def _check_method(version: str, owner: type, name: str, parameters: tuple[str, ...]) -> None:
    method = getattr(owner, name, None)
    found = () if method is None else tuple(inspect.signature(method).parameters)
    if method is None or found[: len(parameters)] != parameters:
        raise _unsupported(version, f"{owner.__qualname__}.{name}{found or ' is missing'}")


def _unsupported(version: str, what: str) -> RuntimeError:
    return RuntimeError(
        f"offload.install_anyio() does not know this anyio ({version}): {what}; "
        "nothing was changed. Please report it with your anyio version."
    )


def _patch(installed: Installed) -> None:
    backend = installed.asyncio_backend
    patches: list[tuple[object, str, object]] = [
        (backend, "run_sync_in_worker_thread", run_sync_in_worker_thread(backend, run_on_asyncio)),
        (backend, "current_default_thread_limiter", limiter_with_tokens(backend)),
    ]
    trio_parts = _trio_parts()
    if trio_parts is not None:
        trio_backend, trio_threads = trio_parts
        patches += [
            (
                trio_backend,
                "run_sync_in_worker_thread",
                run_sync_in_worker_thread(trio_backend, run_routed_on_trio),
            ),
            (trio_backend, "current_default_thread_limiter", limiter_per_trio_run(trio_backend)),
            (trio_threads, "start_thread_soon", start_thread_soon_for(trio_threads.start_thread_soon)),
        ]
    for owner, attribute, value in patches:
        installed.originals.append((owner, attribute, owner.__dict__[attribute]))
        setattr(owner, attribute, value)


def _trio_parts() -> tuple[type, Any] | None:
    """anyio's trio backend class and trio's ``_threads`` module, if trio is installed."""
    try:
        from anyio._backends._trio import TrioBackend
        from trio import _threads
    except ImportError:
        return None
    if not hasattr(_threads, "start_thread_soon"):
        raise _unsupported(importlib.metadata.version("trio"), "trio._threads.start_thread_soon is missing")
    return TrioBackend, _threads
