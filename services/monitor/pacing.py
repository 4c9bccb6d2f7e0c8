"""When the monitor checkpoints next: every ``interval_s``, or less often when checkpoints are slow.

A checkpoint rewrites the monitor's whole state, so its cost grows with the events it holds: on a
backfill, with hundreds of thousands of labels waiting for their predictions, one took half a
second, and at a fixed 5 s interval the monitor stood still a tenth of the time. The pause after a
checkpoint is therefore at least ``ratio`` times what it cost, which keeps checkpoints to at most
``1 / (ratio + 1)`` of the monitor's time (a restart replays a little more in exchange).

>>> pacer = Pacer(interval_s=5.0, ratio=20.0)
>>> pacer.done(started=100.0, finished=100.1)  # 0.1 s: the usual 5 s pause
105.1
>>> pacer.done(started=200.0, finished=200.5)  # 0.5 s: a 10 s pause
210.5
>>> pacer.due(210.4), pacer.due(210.5)
(False, True)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Pacer:
    interval_s: float
    ratio: float = 20.0
    next_at: float = 0.0
    """Monotonic time from which the next checkpoint is due."""
    pause_s: float = 0.0
    """The pause before the next checkpoint: ``interval_s``, or longer after a slow one."""

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.ratio <= 0:
            raise ValueError(
                f"interval_s and ratio must be > 0, got {self.interval_s}, {self.ratio}"
            )

    def start(self, now: float) -> None:
        """The first checkpoint is due one interval from ``now``."""
        self.pause_s = self.interval_s
        self.next_at = now + self.pause_s

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def done(self, started: float, finished: float) -> float:
        """A checkpoint ran from ``started`` to ``finished``: schedule the next; return when."""
        self.pause_s = max(self.interval_s, self.ratio * (finished - started))
        self.next_at = finished + self.pause_s
        return self.next_at
