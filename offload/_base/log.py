"""The ``offload`` logger, where offload says what it cannot raise to a caller."""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("offload")
