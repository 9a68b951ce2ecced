"""anyio's worker threads as offload runs them: the methods install_anyio() (anyio.py)
puts on anyio's backend classes, the call that runs on a pool thread as anyio's worker,
and trio's thread jobs routed to the pool. anyio.py says why each is done so."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._calls.asyncio_call import AsyncioCall
from .._calls.body import CallBody, check_callable, describe
from .._calls.delivery import WINDOW_TURNS, asyncio_inbox_for, trio_inbox_for
from .._submitters.default import default_pool

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable

    from .._calls.delivery import Returning, TrioInbox
    from .._pool.pool import Pool

__all__ = [
    "AnyioCall",
    "Installed",
    "TrioThreadWork",
    "activate",
    "active",
    "run_on_asyncio",
    "run_routed_on_trio",
    "run_sync_in_worker_thread",
]

# anyio's run_sync yields to the loop twice before it submits its next call (its own
# checkpoint, then the limiter's), so its awaiter comes for its thread two turns later.
ANYIO_WINDOW_TURNS = WINDOW_TURNS + 2

if TYPE_CHECKING:
    # How a call goes once install_anyio() is in force: given the backend class, anyio's
    # own method, what is installed, and the call.
    # (..., func, args, abandon_on_cancel, limiter): anyio's arguments, as they came.
    Runner = Callable[
        [type, Callable[..., Awaitable[Any]], "Installed", Callable[..., Any], tuple[Any, ...], bool, Any],
        Awaitable[Any],
    ]


@dataclass
class Installed:
    """What install_anyio() changed, to run on and to put back."""

    pool: Pool | None  # None: the default pool as it is at each call
    tokens: int | None  # tokens of anyio's default limiter; None: the pool's max_threads
    originals: list[tuple[object, str, object]]  # (owner, attribute, value before)
    claim_worker_thread: Callable[[type, object], Any]
    threadlocals: threading.local
    asyncio_backend: type
    cancel_scope: type  # the asyncio backend's CancelScope: made directly, as anyio's backend does
    set_library: Callable[[str | None], object] | None  # sniffio's, where installed

    def pool_now(self) -> Pool:
        return self.pool if self.pool is not None else default_pool()


_installed: Installed | None = None  # set by install_anyio() (anyio.py), under its lock


def active() -> Installed | None:
    """What install_anyio() has set up, or None."""
    return _installed


def activate(installed: Installed | None) -> None:
    global _installed
    _installed = installed


# The default limiters whose tokens install_anyio() has set: each once, when first seen,
# so that a program that sets them afterwards keeps its number.
_tokens_set: weakref.WeakSet[Any] = weakref.WeakSet()
# Set while a call made through anyio's trio backend is on its way to start_thread_soon.
# The pool, and the name of the function for the thread's name.
_trio_route: contextvars.ContextVar[tuple[Pool, str] | None] = contextvars.ContextVar(
    "offload_trio_route", default=None
)


def limiter_with_tokens(backend: type) -> classmethod[Any, Any, Any]:
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


def run_sync_in_worker_thread(backend: type, runner: Runner) -> classmethod[Any, Any, Any]:
    """anyio's method of ``backend`` that runs its calls with ``runner`` while
    install_anyio() is in force, and is anyio's own again once it is undone (for a call
    already on its way then)."""
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
        return await runner(cls, original, installed, func, args, abandon_on_cancel, limiter)

    return classmethod(run_sync_in_worker_thread)


async def run_on_asyncio(cls: type, _: Any, installed: Installed, *arguments: Any) -> Any:
    """anyio's steps, with the call on an offload pool thread set up as anyio's worker."""
    func, args, abandon_on_cancel, limiter = arguments
    await cls.checkpoint()  # type: ignore[attr-defined]
    async with limiter or cls.current_default_thread_limiter():  # type: ignore[attr-defined]
        with installed.cancel_scope(shield=not abandon_on_cancel) as scope:
            # The scope check_cancelled() looks at: with a shield, the one it shields.
            parent = scope._parent_scope
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
    _anyio: Installed
    _scope: object

    def prepare(self, installed: Installed, scope: object) -> None:
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


async def run_routed_on_trio(
    cls: type, original: Callable[..., Awaitable[Any]], installed: Installed, *arguments: Any
) -> Any:
    """anyio's own method, through trio's to_thread, with its thread job routed to the pool."""
    func, _, _, limiter = arguments
    if limiter is None:
        cls.current_default_thread_limiter()  # type: ignore[attr-defined]  # sets its tokens
    route = _trio_route.set((installed.pool_now(), describe(func)))
    try:
        return await original(cls, *arguments)
    finally:
        _trio_route.reset(route)


def start_thread_soon_for(trio_start_thread_soon: Callable[..., None]) -> Callable[..., None]:
    def start_thread_soon(
        fn: Callable[[], Any], deliver: Callable[[Any], object], name: str | None = None
    ) -> None:
        route = _trio_route.get()
        if route is None:
            trio_start_thread_soon(fn, deliver, name)
            return
        import trio

        pool, label = route
        work = TrioThreadWork(fn, deliver, label, trio_inbox_for(trio.lowlevel.current_trio_token()))
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
        "cancel_requested",
        "home",
        "queued",
        "returning",
    )

    window_turns = ANYIO_WINDOW_TURNS

    def __init__(
        self,
        fn: Callable[[], Any],
        deliver: Callable[[Any], object],
        name: str,
        home: TrioInbox,
    ) -> None:
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
        self.home.put(self)  # a pool's own _done() does nothing: no need to call it

    def fail(self, error: BaseException) -> None:
        import outcome

        del self._fn
        self._outcome = outcome.Error(error)
        self.deliver()

    def forget(self) -> None:
        del self._fn

    def settle(self) -> None:
        self._deliver(self._outcome)
