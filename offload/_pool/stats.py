"""``PoolStats``: what a pool's counters read at one moment."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStats"]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a pool, taken atomically under its lock.

    ``threads == busy + returning + idle + starting`` always holds, and the invariant is
    ``idle + starting <= 1``.
    """

    threads: int
    """Threads of the pool alive now."""
    busy: int
    """Threads running a call."""
    idle: int
    """Threads parked waiting for a call (0 or 1)."""
    starting: int
    """Threads asked for that have not reached their first call yet (0 or 1)."""
    queued: int
    """Calls submitted and not yet started, cancelled ones excluded."""
    peak_threads: int
    """The most threads alive at once since the pool was made."""
    spawned: int
    """Threads started since the pool was made."""
    completed: int
    """Calls that have finished running, whatever their outcome."""
    returning: int = 0
    """Threads that delivered an outcome to an event loop which has not yet run the
    awaiter's continuation; the loop's next calls go to them first."""
