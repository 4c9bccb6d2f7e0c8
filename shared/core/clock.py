"""The two clocks driftline reads, named apart.

:func:`now_ms` is wall-clock time in the unit driftline's messages use, epoch milliseconds: for
timestamps that leave the process. :func:`monotonic_ms` never jumps with the wall clock: for how
long something took or has been quiet on this machine, never for a message.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def monotonic_ms() -> int:
    """Milliseconds of the monotonic clock (an arbitrary origin): for intervals only."""
    return int(time.monotonic() * 1000)
