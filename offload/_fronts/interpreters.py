"""``offload.InterpreterPool``: CPU-bound Python code on subinterpreters, awaited as offload's.

Python 3.14 runs isolated interpreters in one process, each with its own GIL, so pure-Python
code in them runs on as many cores as there are interpreters, as in processes, without
starting any. An InterpreterPool is a front (see _fronts/front.py) on a
``concurrent.futures.InterpreterPoolExecutor`` that it owns: a thread per interpreter,
started on demand, each running its calls in the interpreter it made, until shutdown.

What reaches an interpreter is copied there (shared where the type allows it, pickled
otherwise), so the errors users meet are those of ProcessPool, and are made as clear:

- A function that cannot be sent (a closure, a function that reads a global of a module
  the interpreter cannot import) fails in the executor's thread with an error about
  sharing; the awaiter gets a TypeError that names the function and says what to do.
- A new interpreter starts with the ``sys.path`` Python computes at start-up, without
  the changes the program made since (pytest's, say), so modules the program imports
  could be missing there. So each interpreter starts with the program's ``sys.path``, as
  ProcessPool's "spawn" workers do.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .._base.checks import count
from .._base.errors import chained
from .._calls.body import describe
from .front import ExecutorFront, picklable

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InterpreterPool"]


class InterpreterPool(ExecutorFront):
    """Runs calls in subinterpreters of this process (Python 3.14+); await them as
    ``offload()``'s.

    Examples:
        ```python
        async with offload.InterpreterPool() as interpreters:
            primes = await interpreters.run(count_primes, 10_000_000)
        ```

    It takes ``InterpreterPoolExecutor``'s arguments, with the same meaning, and behaves
    as ``ProcessPool`` does. Each interpreter runs on a thread of its own with a GIL of its
    own, so pure-Python calls run in parallel, as in processes, but in this process. On
    Python 3.13 and older, making one raises RuntimeError.

    Constraints, as with processes, since the interpreters share nothing (measured on
    CPython 3.14.10 and 3.15.2):

    - What is passed is copied: the function, arguments and results are shared where the
      type allows it and pickled otherwise. A function at module level travels by name; a
      lambda or local function travels as code if it reads no global and closes over
      nothing (``lambda x: x * 2`` does), and otherwise gets a TypeError that says so. An
      argument that can be neither shared nor pickled gets the executor's
      ``NotShareableError`` (a TypeError). Exceptions reach the awaiter with their type,
      the interpreter's traceback as text in ``__cause__``.
    - Nothing is shared: each interpreter imports its own modules and has its own globals,
      so module-level state set in the program (or by a call in another interpreter) is
      not seen there. ``initializer`` runs in each interpreter as it starts, to set up its
      own. The interpreters get the program's ``sys.path``.
    - A function of the main module that reads its globals makes each interpreter run the
      main module again (under another ``__name__``) to find it: guard the program's
      entry point with ``if __name__ == "__main__":``, as for processes.
    - Interpreters start on demand, up to ``max_workers``, and stay until shutdown. Each
      costs the thread that starts it tens of milliseconds, and its first call imports
      what it needs afresh: from making a pool to the first result of a trivial call,
      50 to 70 ms on 3.14.10 and 0.25 to 0.35 s on 3.15.2 (where importing the executor's
      own module in a new interpreter takes 180 ms), on a shared 2-core machine.
    - C extensions that do not support subinterpreters fail to import in them, with
      ImportError ("does not support loading in subinterpreters"; NumPy, uvloop and
      pydantic-core among them on 3.14): use ProcessPool for code that needs one.

    Cancelling an awaiter cancels its call in the executor, where it never runs if it is
    still queued; a running call finishes, and its outcome is dropped.

    Thread safety: every method may be called from any thread; ``run()`` needs a running
    event loop in the calling thread.

    Args:
        max_workers: The most interpreters, each with a thread; by default, as many as
            CPUs.
        initializer: Called with ``initargs`` in each interpreter as it starts; it must
            be importable by name, as the functions run.
        initargs: The initializer's arguments.

    Raises:
        RuntimeError: This Python is older than 3.14, which added subinterpreters to the
            standard library.
        TypeError: ``max_workers`` is neither an int nor None.
        ValueError: ``max_workers`` is not positive.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        # Literal version checks, which type checkers read as such.
        if sys.version_info < (3, 14):
            raise RuntimeError(
                "offload.InterpreterPool needs Python 3.14 or later (for "
                "concurrent.futures.InterpreterPoolExecutor); this is Python "
                f"{sys.version_info.major}.{sys.version_info.minor}: use offload.ProcessPool"
            )
        count(max_workers, "max_workers", none=True)  # before the executor: it says less
        if initializer is not None and not callable(initializer):
            # The executor would take it, and fail each interpreter as it starts.
            raise TypeError(f"initializer must be callable, not {type(initializer).__name__}")
        if sys.version_info >= (3, 14):
            import os
            from concurrent.futures import InterpreterPoolExecutor

            executor = InterpreterPoolExecutor(
                max_workers or os.process_cpu_count() or 1,
                "offload-interpreter",
                _enter,
                (list(sys.path), initializer, initargs),
            )
            self._setup(executor, owned=True)

    def _explain(self, error: BaseException, fn: Callable[..., Any]) -> BaseException:
        if sys.version_info >= (3, 14):  # always, once made
            from concurrent.interpreters import NotShareableError

            # Whatever could not be shared, a function that cannot be pickled either (so
            # not stateless, or it would have travelled as code) is the culprit. Other
            # functions' errors, an argument's among them, reach the awaiter as they are.
            if isinstance(error, NotShareableError) and not picklable(fn):
                return chained(
                    TypeError(
                        f"{describe(fn)} cannot be sent to a subinterpreter: define it at module "
                        "level (a lambda or local function can be sent only if it reads no "
                        "global and closes over nothing)"
                    ),
                    error,
                )
        return error


def _enter(path: list[str], initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    """Sets up a new interpreter: the program's ``sys.path``, then the user's initializer.

    Reads no global, so it reaches the interpreter as code (a stateless function),
    without importing offload there.
    """
    import sys

    sys.path[:] = path
    if initializer is not None:
        initializer(*initargs)
