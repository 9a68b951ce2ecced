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
  keeps trio's thread cache.

These are anyio's and trio's internals, not their APIs: ``install_anyio()`` checks every
one it uses before it changes anything, and refuses an anyio outside the versions it
knows, so it never patches half-way.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.metadata
import inspect
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._call import AsyncioCall, CallBody, check_callable, describe
from ._delivery import WINDOW_TURNS, asyncio_inbox_for, trio_inbox_for
from ._offload import default_pool
from ._pool import Pool

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._delivery import TrioInbox
    from ._pool import Returning, Submitter

__all__ = ["install_anyio", "uninstall_anyio"]

#: The anyio versions whose internals install_anyio() knows: from the first with
#: ``from_thread.check_cancelled`` on asyncio (4.4) to the last 4.x.
SUPPORTED_ANYIO = ((4, 4), (5, 0))

# anyio's run_sync yields to the loop twice before it submits its next call (its own
# checkpoint, then the limiter's), so its awaiter comes for its thread two turns later.
ANYIO_WINDOW_TURNS = WINDOW_TURNS + 2


@dataclass
class _Installed:
    """What install_anyio() changed, to run on and to put back."""

    pool: Pool | None  # None: the default pool as it is at each call
    tokens: int | None  # tokens of anyio's default limiter; None: the pool's max_threads
    originals: list[tuple[object, str, object]]  # (owner, attribute, value before)
    claim_worker_thread: Callable[[type, object], Any]
    threadlocals: threading.local
    asyncio_backend: type
    set_library: Callable[[str | None], object] | None  # sniffio's, where installed

    def pool_now(self) -> Pool:
        return self.pool if self.pool is not None else default_pool()


_lock = threading.Lock()
_installed: _Installed | None = None
# The default limiters whose tokens install_anyio() has set: each once, when first seen,
# so that a program that sets them afterwards keeps its number.
_tokens_set: weakref.WeakSet[Any] = weakref.WeakSet()
# Set while a call made through anyio's trio backend is on its way to start_thread_soon.
# The pool, and the name of the function for the thread's name.
_trio_route: contextvars.ContextVar[tuple[Pool, str] | None] = contextvars.ContextVar(
    "offload_trio_route", default=None
)


def install_anyio(pool: Pool | None = None, *, tokens: int | None = None) -> None:
    """Runs ``anyio.to_thread.run_sync`` calls on an offload pool, process-wide.

    Example::

        offload.install_anyio()  # before the app starts: FastAPI's def endpoints now
                                 # run on offload's default pool

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
            bound that matters; 40 keeps anyio's own number.

    Raises:
        RuntimeError: The installed anyio is not a version this offload knows, or lacks
            one of the internals it uses (the message names it); nothing is changed.
        TypeError: ``pool`` is not a Pool, or ``tokens`` not an int.
        ValueError: ``tokens`` is not positive.
    """
    global _installed
    if pool is not None and not isinstance(pool, Pool):
        raise TypeError(f"install_anyio() pool must be an offload.Pool, not {type(pool).__name__}")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool)):
        raise TypeError(f"install_anyio() tokens must be an int or None, not {type(tokens).__name__}")
    if tokens is not None and tokens < 1:
        raise ValueError(f"install_anyio() tokens must be at least 1, not {tokens}")
    with _lock:
        if _installed is not None:
            _installed.pool, _installed.tokens = pool, tokens
            return
        installed = _check_anyio(pool, tokens)
        _patch(installed)
        _installed = installed


def uninstall_anyio() -> None:
    """Puts anyio back as it was before ``install_anyio()``; a no-op if not installed.

    Calls already submitted finish on the pool. Default limiters whose tokens were set
    keep them for the rest of their event loop's run.
    """
    global _installed
    with _lock:
        if _installed is None:
            return
        for owner, attribute, value in reversed(_installed.originals):
            setattr(owner, attribute, value)
        _installed = None


# --- the checks and the patch ---


def _check_anyio(pool: Pool | None, tokens: int | None) -> _Installed:
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
    (backend,) = _lookup(version, "anyio._backends._asyncio", "AsyncIOBackend")
    _check_method(
        version, backend, "run_sync_in_worker_thread", ("func", "args", "abandon_on_cancel", "limiter")
    )
    _check_method(version, backend, "current_default_thread_limiter", ())
    try:
        import sniffio
    except ImportError:
        set_library = None
    else:
        set_library = sniffio.current_async_library_cvar.set
    return _Installed(
        pool=pool,
        tokens=tokens,
        originals=[],
        claim_worker_thread=eventloop[0],
        threadlocals=eventloop[1],
        asyncio_backend=backend,
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


def _patch(installed: _Installed) -> None:
    backends: list[type] = [installed.asyncio_backend]
    patches: list[tuple[object, str, object]] = [
        (installed.asyncio_backend, "run_sync_in_worker_thread", classmethod(_run_sync_on_asyncio))
    ]
    trio_parts = _trio_parts()
    if trio_parts is not None:
        trio_backend, trio_threads = trio_parts
        backends.append(trio_backend)
        patches += [
            (trio_backend, "run_sync_in_worker_thread", _routed_to_pool(trio_backend)),
            (trio_threads, "start_thread_soon", _start_thread_soon_for(trio_threads.start_thread_soon)),
        ]
    patches += [
        (backend, "current_default_thread_limiter", _limiter_with_tokens(backend)) for backend in backends
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


def _limiter_with_tokens(backend: type) -> classmethod[Any, Any, Any]:
    original = backend.__dict__["current_default_thread_limiter"].__func__

    def current_default_thread_limiter(cls: type) -> Any:
        limiter = original(cls)
        installed = _installed
        if installed is not None and limiter not in _tokens_set:
            _tokens_set.add(limiter)
            limiter.total_tokens = installed.tokens or installed.pool_now().max_threads
        return limiter

    return classmethod(current_default_thread_limiter)


# --- asyncio ---


async def _run_sync_on_asyncio(
    cls: type,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    abandon_on_cancel: bool = False,
    limiter: Any = None,
) -> Any:
    from anyio import CancelScope

    installed = _installed
    if installed is None:  # undone while this call was on its way: anyio's own method
        method = cls.run_sync_in_worker_thread  # type: ignore[attr-defined]
        return await method(func, args, abandon_on_cancel=abandon_on_cancel, limiter=limiter)
    check_callable(func)
    await cls.checkpoint()  # type: ignore[attr-defined]
    async with limiter or cls.current_default_thread_limiter():  # type: ignore[attr-defined]
        with CancelScope(shield=not abandon_on_cancel) as scope:
            # The scope check_cancelled() looks at: with a shield, the one it shields.
            parent = scope._parent_scope  # type: ignore[attr-defined]
            loop = asyncio.get_running_loop()
            call = AnyioCall(loop=loop)
            call.home = asyncio_inbox_for(loop)
            call.bind(installed.pool_now(), func, args, {})
            call.prepare(installed, scope if abandon_on_cancel or parent is None else parent)
            call._submitter._submit(call)
            return await call


class AnyioCall(AsyncioCall):
    """A call from anyio's asyncio backend: the pool thread runs it as anyio's worker."""

    __slots__ = ("_anyio", "_scope")

    window_turns = ANYIO_WINDOW_TURNS
    STOP_ITERATION = "coroutine raised StopIteration"  # anyio's words, which its users match
    _anyio: _Installed
    _scope: object

    def prepare(self, installed: _Installed, scope: object) -> None:
        self._anyio = installed
        self._scope = scope
        if installed.set_library is not None:
            # Not asyncio inside the thread, though the context copied says it is.
            self._context.run(installed.set_library, None)

    def run(self) -> None:
        installed, scope = self._anyio, self._scope
        del self._anyio, self._scope
        with installed.claim_worker_thread(installed.asyncio_backend, self.get_loop()):
            installed.threadlocals.current_cancel_scope = scope
            try:
                CallBody.run(self)
            finally:
                del installed.threadlocals.current_cancel_scope
        del self  # no cycle through the error's traceback: see CallBody.run


# --- trio ---


def _routed_to_pool(backend: type) -> classmethod[Any, Any, Any]:
    original = backend.__dict__["run_sync_in_worker_thread"].__func__

    async def run_sync_in_worker_thread(
        cls: type,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        abandon_on_cancel: bool = False,
        limiter: Any = None,
    ) -> Any:
        installed = _installed
        if installed is None:
            return await original(cls, func, args, abandon_on_cancel, limiter)
        check_callable(func)
        if limiter is None:
            cls.current_default_thread_limiter()  # type: ignore[attr-defined]  # sets its tokens
        route = _trio_route.set((installed.pool_now(), describe(func)))
        try:
            return await original(cls, func, args, abandon_on_cancel, limiter)
        finally:
            _trio_route.reset(route)

    return classmethod(run_sync_in_worker_thread)


def _start_thread_soon_for(trio_start_thread_soon: Callable[..., None]) -> Callable[..., None]:
    def start_thread_soon(
        fn: Callable[[], Any], deliver: Callable[[Any], object], name: str | None = None
    ) -> None:
        route = _trio_route.get()
        if route is None:
            trio_start_thread_soon(fn, deliver, name)
            return
        import trio

        pool, label = route
        work = TrioThreadWork(pool, fn, deliver, label, trio_inbox_for(trio.lowlevel.current_trio_token()))
        pool._submit(work)

    return start_thread_soon


class TrioThreadWork:
    """A job trio's ``to_thread.run_sync`` hands to ``start_thread_soon``, as the pool's
    Work: trio's ``fn`` runs on the pool thread, and trio's ``deliver`` (which wakes the
    awaiting task through trio's own ``run_sync_soon``) runs on trio's thread, from the
    inbox, so that the thread can return to the loop as other calls' threads do."""

    __slots__ = (
        "_deliver",
        "_fn",
        "_name",
        "_outcome",
        "_submitter",
        "cancel_requested",
        "home",
        "queued",
        "returning",
    )

    window_turns = ANYIO_WINDOW_TURNS

    def __init__(
        self,
        submitter: Submitter,
        fn: Callable[[], Any],
        deliver: Callable[[Any], object],
        name: str,
        home: TrioInbox,
    ) -> None:
        self._submitter = submitter
        self._fn = fn
        self._deliver = deliver
        self._name = name
        self.home = home
        self.cancel_requested = False
        self.queued = False
        self.returning: Returning | None = None

    def label(self) -> str:
        return self._name

    def run(self) -> None:
        import outcome

        fn = self._fn
        del self._fn
        self._outcome = outcome.capture(fn)
        del self  # no cycle through the error's traceback: see CallBody.run

    def deliver(self) -> None:
        self._submitter._done(self)
        self.home.put(self)

    def fail(self, error: BaseException) -> None:
        import outcome

        del self._fn
        self._outcome = outcome.Error(error)
        self.deliver()

    def forget(self) -> None:
        del self._fn

    def settle(self) -> None:
        self._deliver(self._outcome)
