"""Wall-clock time in the unit driftline's messages use: epoch milliseconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)
