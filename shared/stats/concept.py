"""Concept drift on a model's per-event error stream: river's detectors, plus where the change began.

A detector (ADWIN by default; Page-Hinkley, KSWIN, DDM and EDDM selectable) watches the error of each
labelled event: 0/1 for a classifier, the absolute error for a regressor. When it fires,
:func:`locate_change` estimates where the change began, as the split of the recent errors that best
separates two means (the maximum-likelihood change point of a mean shift). ADWIN's own cut is
coarse (its buckets keep hundreds of pre-change events), and the trainer must fit on post-change data
only, so the estimate matters. Only a rise in error is reported: a model getting better is no alarm.

>>> import random
>>> rnd = random.Random(1)
>>> watch = ConceptDrift("adwin")
>>> for i in range(4_000):
...     found = watch.update(float(rnd.random() < (0.1 if i < 2_000 else 0.5)), ts_ms=i)
...     if found:
...         print(found.at, abs(found.since_ts - 2_000) < 50, round(found.after - found.before, 1))
2037 True 0.4

Every name of :data:`~shared.core.kinds.DetectorName` has its factory here:

>>> from shared.core.kinds import DETECTOR_NAMES
>>> sorted(DETECTORS) == sorted(DETECTOR_NAMES)
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import drift
from river.drift import binary

from shared.core.kinds import DetectorName

DETECTORS: dict[DetectorName, Callable[[], Any]] = {
    "adwin": lambda: drift.ADWIN(clock=1),  # type: ignore[no-untyped-call]
    "adwin-default": drift.ADWIN,
    "page-hinkley": lambda: drift.PageHinkley(mode="up", threshold=25.0),
    # KSWIN compares distributions; on 0/1 errors it needs wide windows to reach significance.
    "kswin": lambda: drift.KSWIN(alpha=1e-4, window_size=300, stat_size=100, seed=0),
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
}
"""Detector name -> factory. ``adwin`` checks for a cut after every event (river's default checks
every 32nd, which delays detection by up to 31 events); ``adwin-default`` is river's ADWIN as it
comes, the benchmark's reference. ``ddm`` and ``eddm`` take 0/1 errors only (classification)."""

BINARY_ONLY: frozenset[DetectorName] = frozenset({"ddm", "eddm"})


@dataclass(frozen=True)
class Detection:
    """A rise in error found by the detector."""

    at: int
    """How many errors the detector had seen when it fired (1-based index of the firing event)."""
    ts_ms: int
    """Event time of the event on which it fired."""
    since_ts: int
    """Event time where the change began (:func:`locate_change`)."""
    before: float
    """Mean error before the change point, over the recent errors."""
    after: float
    """Mean error from the change point to the detection."""


def locate_change(errors: np.ndarray, min_segment: int = 10) -> int:
    """Index of the first element after the most likely mean shift in ``errors``.

    Maximises ``k (n - k) / n * (mean(errors[:k]) - mean(errors[k:]))**2`` over ``k``: the
    between-segment sum of squares, the least-squares change point of a single mean shift.

    >>> locate_change(np.array([0.0] * 30 + [1.0] * 20))
    30
    """
    n = errors.size
    if n < 2 * min_segment:
        return 0
    cumulative = np.cumsum(errors, dtype=float)
    total = cumulative[-1]
    k = np.arange(min_segment, n - min_segment + 1)
    left = cumulative[k - 1] / k
    right = (total - cumulative[k - 1]) / (n - k)
    score = k * (n - k) / n * (left - right) ** 2
    return int(k[int(np.argmax(score))])


class ConceptDrift:
    """One detector over one error stream, with the recent errors kept to locate a change."""

    def __init__(self, detector: str = "adwin", *, history: int = 5_000) -> None:
        if detector not in DETECTORS:
            raise ValueError(
                f"unknown concept-drift detector {detector!r}; choose one of {', '.join(DETECTORS)}"
            )
        self.name = detector
        self._detector = DETECTORS[detector]()
        self._errors: deque[float] = deque(maxlen=history)
        self._times: deque[int] = deque(maxlen=history)
        self._since_detection = 0
        self.seen = 0

    @property
    def binary_only(self) -> bool:
        return self.name in BINARY_ONLY

    def update(self, error: float, ts_ms: int) -> Detection | None:
        """Feed one event's error; return a :class:`Detection` when error has risen."""
        self.seen += 1
        self._since_detection += 1
        self._errors.append(error)
        self._times.append(ts_ms)
        self._detector.update(error)
        if not self._detector.drift_detected:
            return None
        # Look back over what the detector has seen since its last alarm (at most ``history``).
        span = min(self._since_detection, len(self._errors))
        self._since_detection = 0
        recent = np.fromiter(self._errors, dtype=float)[-span:]
        times = list(self._times)[-span:]
        cut = locate_change(recent)
        before = float(recent[:cut].mean()) if cut > 0 else float("nan")
        after = float(recent[cut:].mean())
        if cut == 0 or after <= before:
            return None  # error fell, or no clear split: not a degradation
        return Detection(at=self.seen, ts_ms=ts_ms, since_ts=times[cut], before=before, after=after)
