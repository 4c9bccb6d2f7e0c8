"""The rollback guard: does a newly promoted version do worse on live labels than its predecessor?

The trainer sees every labelled example with the version that served it, so it can compare the two
versions on the same live stream: the predecessor over its last ``min_labels`` labelled events
(measured when the verdict is due, so labels that arrived late still count) against the new version
over its first ``min_labels``. Loss is the 0/1 error for a classifier and the squared error for a
regressor. The new version fails when its loss is higher by more than ``margin``: absolute error
points for classification, a relative increase for regression (0.05 = 5% worse).

>>> guard = RollbackGuard("classification", min_labels=4, margin=0.1)
>>> for label in [1, 1, 0, 0]:
...     _ = guard.observe(1, label, 1)     # v1 right half the time: error 0.5
>>> guard.promoted(2, 1)
>>> [guard.observe(2, 1, 0) for _ in range(4)][-1].rollback  # v2 wrong every time: error 1.0
True

A version promoted elsewhere (``driftline models promote``) is judged the same way, from the
first of its examples on the stream:

>>> guard = RollbackGuard("classification", min_labels=4, margin=0.1)
>>> for label in [1, 1, 1, 0]:
...     _ = guard.observe(1, label, 1)     # v1 wrong once in four: error 0.25
>>> [guard.observe(2, 1, 0) for _ in range(4)][-1].reason
"v2 live error rate 1 over 4 labels is worse than v1's 0.25 by the margin 0.1"
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from shared.core.kinds import Task
from shared.stats.loss import event_loss


@dataclass(frozen=True)
class Verdict:
    version: int
    predecessor: int
    rollback: bool
    reason: str
    loss: float
    predecessor_loss: float | None


class RollbackGuard:
    def __init__(self, task: Task, min_labels: int = 300, margin: float = 0.05) -> None:
        if min_labels < 1:
            raise ValueError("the rollback guard needs at least one label")
        self.task = task
        self.min_labels = min_labels
        self.margin = margin
        self._losses: dict[int, deque[float]] = {}
        self.watching: tuple[int, int] | None = None
        """(new version, predecessor) while a verdict is pending."""
        self._newest: int | None = None
        self._last: int | None = None
        """The version of the latest example: a new version's predecessor when it appears."""

    def promoted(self, version: int, predecessor: int) -> None:
        """``version`` replaced ``predecessor``: judge it once it has ``min_labels`` labels."""
        self.watching = (version, predecessor)
        self._losses.pop(version, None)

    def loss(self, label: Any, prediction: Any) -> float:
        return event_loss(self.task, label, prediction)

    def observe(self, version: int | None, label: Any, prediction: Any) -> Verdict | None:
        """One labelled live example; a verdict when the watched version has enough labels."""
        if version is None or prediction is None:
            return None
        try:
            value = self.loss(label, prediction)
        except (TypeError, ValueError):
            return None
        self._appeared(version)
        losses = self._losses.setdefault(version, deque(maxlen=self.min_labels))
        losses.append(value)
        if self.watching is None or self.watching[0] != version or len(losses) < self.min_labels:
            return None
        new, old = self.watching
        self.watching = None
        return self._verdict(new, old)

    def _appeared(self, version: int) -> None:
        """A version newer than any seen is judged against the one served before it, whoever
        promoted it (this trainer, another, or `driftline models promote`)."""
        newest = self._newest
        if newest is None or version > newest:
            watched = self.watching is not None and self.watching[0] == version
            if newest is not None and self._last is not None and not watched:
                self.watching = (version, self._last)
                self._losses.pop(version, None)
            self._newest = version
        self._last = version

    def _verdict(self, new: int, old: int) -> Verdict:
        loss = sum(self._losses[new]) / len(self._losses[new])
        before = self._losses.get(old)
        if not before or len(before) < self.min_labels:
            seen = len(before) if before else 0
            reason = (
                f"v{old} had {seen} live labels, fewer than {self.min_labels}: nothing to compare"
            )
            return Verdict(new, old, False, reason, loss, None)
        old_loss = sum(before) / len(before)
        name = "error rate" if self.task == "classification" else "mse"
        if self.task == "classification":
            worse = loss > old_loss + self.margin
        else:
            worse = loss > old_loss * (1.0 + self.margin)
        verdict = "worse" if worse else "not worse"
        reason = (
            f"v{new} live {name} {loss:.4g} over {self.min_labels} labels is {verdict} than "
            f"v{old}'s {old_loss:.4g} by the margin {self.margin}"
        )
        return Verdict(new, old, worse, reason, loss, old_loss)
