"""What runs in the pool thread: the function, its arguments and context, its outcome.

``CallBody`` holds the function, runs it in the pool thread and keeps the outcome; each
awaiter adds how it is woken (asyncio_call.py, trio_call.py, the Executor's Future). A
call is submitted to a ``Submitter``: a pool, or something in front of one.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from functools import partial
from types import BuiltinFunctionType, CoroutineType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from .._base.errors import chained
from .._base.log import logger
from .delivery import WINDOW_TURNS

if TYPE_CHECKING:
    from collections.abc import Callable

    from .delivery import Inbox, Returning

__all__ = [
    "Abandonable",
    "CallBody",
    "Submitter",
    "abandonable",
    "check_callable",
    "describe",
    "inner_function",
]

P = ParamSpec("P")
R = TypeVar("R")


class Submitter(Protocol):
    """What a call is submitted to: a Pool, or a Limiter or an executor in front of one."""

    def _submit(self, work: CallBody) -> None:
        """Takes ``work`` in; any thread; never waits."""

    def _cancel(self, work: CallBody) -> bool:
        """Marks ``work`` cancelled; True if it had not started and never will."""

    def _done(self, work: CallBody) -> None:
        """Told, in the pool thread, that ``work`` is done, just before its delivery."""


def check_callable(fn: object) -> None:
    """Raises TypeError if ``fn`` cannot be offloaded: not callable, or asynchronous (a
    coroutine or async generator function, or an object whose ``__call__`` is one).

    Plain functions, methods and builtins, by far the most common, are decided from their
    code flags alone, and so is a ``functools.partial`` of one (asyncio.to_thread, anyio
    under Starlette and FastAPI wrap every call in one), by the function inside it (see
    ``inner_function``); anything else goes through ``inspect``. A callable that returns a
    coroutine anyway is caught in the pool thread (see ``_invoke``).
    """
    kind = type(fn)
    if kind is partial:
        inner = inner_function(fn)
        if type(inner) is not partial:  # else a partial that holds itself: inspect decides
            fn, kind = inner, type(inner)
    if kind is BuiltinFunctionType:
        return
    if kind is FunctionType:
        flags = fn.__code__.co_flags  # type: ignore[attr-defined]
    elif kind is MethodType:
        flags = _code_flags(fn.__func__)  # type: ignore[attr-defined]
    elif kind is Abandonable:
        return  # abandonable() checked its function
    elif not callable(fn):
        raise TypeError(f"offload() needs a callable to run in a thread, not {kind.__name__} {fn!r}")
    else:
        flags = _code_flags(fn) | _code_flags(kind.__call__)
    if flags & inspect.CO_COROUTINE:
        raise TypeError(
            f"{describe(fn)} is a coroutine function, which does not block: "
            "await it directly instead of offloading it"
        )
    if flags & inspect.CO_ASYNC_GENERATOR:
        raise TypeError(
            f"{describe(fn)} is an async generator function, which does not block: "
            "iterate it with 'async for' instead of offloading it"
        )


class Abandonable(Generic[P, R]):
    """A function marked by ``abandonable()``; calling it calls the function."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[P, R]) -> None:
        self.fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"abandonable({self.fn!r})"


def abandonable(fn: Callable[P, R], /) -> Callable[P, R]:
    """Marks ``fn`` so that a call of it may be abandoned once its awaiter is cancelled.

    Examples:
        ```python
        line = await offload(abandonable(sys.stdin.readline))
        ```

    A call that has started runs to its end even if its awaiter is cancelled, and
    interpreter exit waits for it, as it waits for ``asyncio.to_thread`` calls: a write
    cut short at exit is lost in silence. A call of an abandonable function whose awaiter
    was cancelled is left running instead, and ends with the interpreter: for calls that
    may block for ever (reading a terminal, waiting on a socket) and lose nothing if cut
    short. anyio's ``abandon_on_cancel=True`` means the same after ``install_anyio()``.

    It holds through ``offload()``, ``Pool.run()``, ``Limiter.run()`` and
    ``@blocking``. A call whose awaiter was not cancelled is waited for at exit all the
    same; one through a ``concurrent.futures`` Future (``Executor``,
    ``run_in_executor``) cannot be cancelled once running, so it is always waited for.

    Args:
        fn: The function whose calls may be abandoned.

    Returns:
        A callable with ``fn``'s signature that calls ``fn``; pass it where ``fn`` would
            go (``offload(abandonable(fn), ...)``).

    Raises:
        TypeError: ``fn`` is not callable, or is a coroutine function.
    """
    check_callable(fn)
    return Abandonable(fn)


def _code_flags(fn: object) -> int:
    """CO_COROUTINE and CO_ASYNC_GENERATOR, as ``inspect`` finds them on ``fn`` (through
    functools.partial and @wraps, and asyncio's marker); 0 if it cannot tell."""
    try:
        if inspect.iscoroutinefunction(fn):
            return inspect.CO_COROUTINE
        if inspect.isasyncgenfunction(fn):
            return inspect.CO_ASYNC_GENERATOR
    except Exception:  # a proxy object whose attribute lookups raise: let the call show it
        pass
    return 0


def describe(fn: object) -> str:
    """A short name for ``fn``, its qualified name, for thread names and messages; for a
    ``functools.partial``, that of the function inside (see ``inner_function``), since
    asyncio.to_thread, Starlette and FastAPI wrap every call in one.

    Never raises: a framework's proxy object can raise on any attribute lookup, and a
    pool thread names itself after its call before it runs it.
    """
    try:
        if type(fn) is partial:
            fn = inner_function(fn)
        name = getattr(fn, "__qualname__", None)
    except Exception:
        name = None
    return name if isinstance(name, str) else type(fn).__qualname__


def inner_function(fn: object) -> object:
    """What a call of ``fn`` calls in the end, seen through ``functools.partial`` at any
    depth: a partial's function, and for ``partial(Context.run, f, ...)``, the form
    asyncio.to_thread submits, ``f``; ``fn`` itself if it is no partial.

    Exact partials only: a subclass may call something else. Of a Context's methods only
    ``run`` calls its first argument; for another, that argument names a call no worse.
    Gives up after a few levels on a partial that holds itself, which ``__setstate__``
    can make: the loop thread and a pool thread both ask, neither may hang.
    """
    levels = 8
    while type(fn) is partial and levels:
        levels -= 1
        wrapped = fn.func
        if type(wrapped) is BuiltinFunctionType and type(wrapped.__self__) is contextvars.Context and fn.args:
            fn = fn.args[0]
        else:
            fn = wrapped
    return fn


def _invoke(
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    stop_iteration: str,
) -> tuple[Any, BaseException | None]:
    """Runs the call; returns its value or its exception.

    The exception's traceback holds this frame, so the frame holds no reference to the
    exception (``except ... as`` unbinds it on the way out) nor to the call object:
    no reference cycle keeps a failed call alive until the garbage collector runs. The
    traceback holds the callers' frames too (``f_back``), so they let go of the call
    before they return: see ``CallBody.run``.
    """
    try:
        value = context.run(fn, *args, **kwargs)
    except StopIteration as exc:
        # A Future cannot hold StopIteration (it would end the awaiting coroutine
        # silently); convert it as PEP 479 does for generators.
        return None, chained(RuntimeError(stop_iteration.format(describe(fn))), exc)
    except BaseException as exc:
        return None, exc
    if type(value) is CoroutineType:
        value.close()
        return None, TypeError(
            f"{describe(fn)} returned a coroutine: it is asynchronous, so await it directly "
            "instead of offloading it"
        )
    return value, None


class CallBody:
    """The part of a call that runs in the pool thread; a mixin with the slots below."""

    if not TYPE_CHECKING:  # mypy cannot tell that every subclass declares BODY_SLOTS
        __slots__ = ()

    _submitter: Submitter
    _fn: Callable[..., Any]
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    _context: contextvars.Context
    _label: str
    _value: Any
    _error: BaseException | None
    home: Inbox | None
    returning: Returning | None
    cancel_requested: bool
    abandon_on_cancel: bool
    queued: bool

    window_turns = WINDOW_TURNS
    # The message of the RuntimeError a StopIteration raised by the call becomes.
    STOP_ITERATION = "{} raised StopIteration"

    BODY_SLOTS = (
        "_args",
        "_context",
        "_error",
        "_fn",
        "_kwargs",
        "_label",
        "_submitter",
        "_value",
        "abandon_on_cancel",
        "cancel_requested",
        "home",
        "queued",
        "returning",
    )

    def bind(
        self, submitter: Submitter, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Sets the call up, in the caller's thread, whose context it copies; ``home``
        is set before, by the front end."""
        self._submitter = submitter
        self.abandon_on_cancel = type(fn) is Abandonable
        self._fn = fn.fn if self.abandon_on_cancel else fn  # type: ignore[attr-defined]
        self._args = args
        self._kwargs = kwargs
        self._context = contextvars.copy_context()
        self.cancel_requested = False
        self.queued = False
        self.returning = None

    def label(self) -> str:
        # In the pool thread, not at submission: the loop's thread pays for nothing here.
        self._label = describe(self._fn)
        return self._label

    def run(self) -> None:
        fn, args, kwargs, context = self._fn, self._args, self._kwargs, self._context
        # Dropped now, not when the awaiter lets go of the call: arguments can be big.
        del self._fn, self._args, self._kwargs, self._context
        self._value, self._error = _invoke(context, fn, args, kwargs, self.STOP_ITERATION)
        # The error's traceback holds this frame, which would hold the call, which holds
        # the error: a cycle that keeps the call, and the pool thread's frames and Thread
        # (on 3.13, its stack too) until the garbage collector runs, which on 3.13t is
        # rare enough to run out of memory maps. As concurrent.futures' _WorkItem.run does.
        del self

    def fail(self, error: BaseException) -> None:
        self.finish(None, error)

    def forget(self) -> None:
        del self._fn, self._args, self._kwargs, self._context

    def finish(self, value: Any, error: BaseException | None) -> None:
        """Delivers the outcome of a call that ``run()`` did not run: it ran in another
        process (see _fronts/front.py), or it never will."""
        self._label = describe(self._fn)
        del self._fn, self._args, self._kwargs, self._context  # as run() does
        self._value = value
        self._error = error
        self.deliver()

    def deliver(self) -> None:
        # The submitter hears first: a Limiter then hands its place to a held call,
        # which finds this thread already idle (the pool parks it before delivery).
        self._submitter._done(self)
        self._send()

    def _send(self) -> None:
        """Sends the outcome to the awaiter, through its loop's inbox."""
        if self.cancel_requested and self.returning is None:
            # The awaiter was released when it was cancelled: do not wake the loop for
            # an outcome nobody will read. (If cancel() comes later, settle() sees it.)
            # A thread returning with it goes all the same, for its window to close.
            self.report_lost_error()
        else:
            self.home.put(self)  # type: ignore[union-attr]  # every awaited call has one

    if TYPE_CHECKING:  # each front end's own; the inbox calls it on the loop's thread

        def settle(self) -> None: ...

    def report_lost_error(self) -> None:
        """Logs the call's exception, which its cancelled awaiter will never see."""
        error = self._error
        if error is not None and not isinstance(error, asyncio.CancelledError):
            logger.error(
                "offloaded call %s raised after its awaiter was cancelled", self._label, exc_info=error
            )
