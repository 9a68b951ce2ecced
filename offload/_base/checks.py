"""Argument checks, written once: each names the argument, what it takes, and what it got."""

from __future__ import annotations

import math
import threading
from typing import Any, overload

__all__ = ["count", "seconds"]


@overload
def count(value: Any, what: str) -> int: ...
@overload
def count(value: Any, what: str, *, none: bool) -> int | None: ...
def count(value: Any, what: str, *, none: bool = False) -> int | None:
    """``value`` if it is an int of at least 1 (or None, if ``none``); else TypeError or
    ValueError naming ``what``."""
    if value is None and none:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        kinds = "an int or None" if none else "an int"
        raise TypeError(f"{what} must be {kinds}, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, not {value}")
    return value


def seconds(value: Any, what: str) -> float:
    """``value`` as a float number of seconds >= 0; ``math.inf`` (or longer than a lock's
    wait can be told, about 292 years) for ever."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be >= 0 (or math.inf for ever), not {value}")
    return math.inf if value > threading.TIMEOUT_MAX else float(value)
