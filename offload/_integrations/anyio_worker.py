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
    "limiter_per_trio_run",
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
_trio_route: contextvars.ContextVar[TrioRoute | None] = contextvars.ContextVar(
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


def limiter_per_trio_run(backend: type) -> classmethod[Any, Any, Any]:
    """On trio, anyio's default limiter wraps trio's own, which plain
    ``trio.to_thread.run_sync`` uses too: its tokens are trio's. So while install_anyio()
    is in force, anyio's calls on trio get a limiter of their own in each run, with the
    tokens install_anyio() sets."""
    import anyio
    import trio

    original = backend.__dict__["current_default_thread_limiter"].__func__
    own: trio.lowlevel.RunVar[Any] = trio.lowlevel.RunVar("offload_anyio_thread_limiter")

    def current_default_thread_limiter(cls: type) -> Any:
        installed = _installed
        if installed is None:
            return original(cls)
        try:
            return own.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(installed.tokens or installed.pool_now().max_threads)
            own.set(limiter)
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
            if abandon_on_cancel:
                call.abandon_on_cancel = True
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


class TrioRoute:
    """Where a call made through anyio's trio backend goes: the pool, the name of the
    function for the thread's name, and the job trio hands over for it, once it has."""

    __slots__ = ("abandon_on_cancel", "label", "pool", "work")

    def __init__(self, pool: Pool, label: str, abandon_on_cancel: bool) -> None:
        self.pool = pool
        self.label = label
        self.abandon_on_cancel = abandon_on_cancel
        self.work: TrioThreadWork | None = None

    def left(self) -> None:
        """On trio's thread, once anyio's call has returned or raised: if trio abandoned
        the job (a cancelled call with ``abandon_on_cancel``), the pool learns it, so that
        exit does not wait for it and its thread does not return to this run."""
        work = self.work
        if work is None or work.settled:
            return
        if self.pool._cancel(work):
            # Taken out of the queue before it ran: told an outcome all the same, trio
            # releases its limiter's token (the outcome itself goes unread).
            work.fail(asyncio.CancelledError("the call was abandoned before it started"))


async def run_routed_on_trio(
    cls: type, original: Callable[..., Awaitable[Any]], installed: Installed, *arguments: Any
) -> Any:
    """anyio's own method, through trio's to_thread, with its thread job routed to the pool."""
    func, args, abandon_on_cancel, limiter = arguments
    if limiter is None:
        # anyio's limiter of this run, not trio's own default, whose tokens are trio's
        limiter = cls.current_default_thread_limiter()  # type: ignore[attr-defined]
    route = TrioRoute(installed.pool_now(), describe(func), abandon_on_cancel)
    token = _trio_route.set(route)
    try:
        return await original(cls, func, args, abandon_on_cancel, limiter)
    finally:
        _trio_route.reset(token)
        route.left()


def start_thread_soon_for(trio_start_thread_soon: Callable[..., None]) -> Callable[..., None]:
    def start_thread_soon(
        fn: Callable[[], Any], deliver: Callable[[Any], object], name: str | None = None
    ) -> None:
        route = _trio_route.get()
        if route is None:
            trio_start_thread_soon(fn, deliver, name)
            return
        import trio

        work = TrioThreadWork(fn, deliver, route, trio_inbox_for(trio.lowlevel.current_trio_token()))
        route.pool._submit(work)
        route.work = work

    return start_thread_soon


class TrioThreadWork:
    """A job trio's ``to_thread.run_sync`` hands to ``start_thread_soon``, as the pool's
    Work: trio's ``fn`` runs on the pool thread, and trio's ``deliver`` (which wakes the
    awaiting task through trio's own ``run_sync_soon``, and releases trio's limiter) runs
    on trio's thread, from the inbox, so that the thread can return to the loop as other
    calls' threads do."""

    __slots__ = (
        "_deliver",
        "_fn",
        "_name",
        "_outcome",
        "abandon_on_cancel",
        "cancel_requested",
        "home",
        "queued",
        "returning",
        "settled",
    )

    window_turns = ANYIO_WINDOW_TURNS

    def __init__(
        self,
        fn: Callable[[], Any],
        deliver: Callable[[Any], object],
        route: TrioRoute,
        home: TrioInbox,
    ) -> None:
        self._fn: Callable[[], Any] | None = fn
        self._deliver = deliver
        self._name = route.label
        self.home = home
        self.abandon_on_cancel = route.abandon_on_cancel
        self.cancel_requested = False
        self.settled = False  # read and written on trio's thread only
        self.queued = False
        self.returning: Returning | None = None

    def label(self) -> str:
        return self._name

    def run(self) -> None:
        import outcome

        fn, self._fn = self._fn, None
        assert fn is not None  # the pool runs a call once, and never a forgotten one
        self._outcome = outcome.capture(fn)
        del self  # no cycle through the error's traceback: see CallBody.run

    def deliver(self) -> None:
        self.home.put(self)  # a pool's own _done() does nothing: no need to call it

    def fail(self, error: BaseException) -> None:
        import outcome

        self._fn = None
        self._outcome = outcome.Error(error)
        self.deliver()

    def forget(self) -> None:
        self._fn = None

    def settle(self) -> None:
        self.settled = True
        self._deliver(self._outcome)
