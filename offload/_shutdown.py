"""``with`` for what has ``shutdown(wait=True)``: pools and the fronts beyond threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ShutsDownOnExit"]


class ShutsDownOnExit:
    """A base whose ``with`` block ends in ``shutdown(wait=True)``, as an executor's does."""

    __slots__ = ()

    if TYPE_CHECKING:  # each subclass has its own

        def shutdown(self, wait: bool = True, *, cancel_queued: bool = False) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)
