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

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from river import drift, stats
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
        try:
            self._detector.update(error)
        except BaseException as exc:  # river's Rust ADWIN panics (a BaseException) on bad state
            if not _is_panic(exc):
                raise
            self._detector = DETECTORS[self.name]()
            return None
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


# ---- checkpoints: a detector as plain data --------------------------------------------------


class ConceptState(msgspec.Struct, frozen=True):
    """A :class:`ConceptDrift` as plain data. ``detector`` holds the river detector's own fields
    by name: numbers, lists, river's running statistics as dicts of numbers, a random generator's
    state as numbers, and for ADWIN the bytes of its Rust state (parsed by river's own
    ``__setstate__``, which builds buckets from them and can name nothing to call)."""

    name: str
    history: int
    errors: list[float]
    times: list[int]
    since_detection: int
    seen: int
    detector: dict[str, Any]


_RIVER_STATS = (stats.Mean, stats.Var)
"""River statistics a detector may hold, saved as their fields."""
_PRIMITIVE = (bool, int, float, str, type(None))


def concept_state(concept: ConceptDrift) -> ConceptState:
    return ConceptState(
        name=concept.name,
        history=concept._errors.maxlen or 0,
        errors=list(concept._errors),
        times=list(concept._times),
        since_detection=concept._since_detection,
        seen=concept.seen,
        detector=_fields(concept._detector),
    )


def restore_concept(state: ConceptState) -> ConceptDrift:
    """The detector ``state`` describes: a new one from the factory of its name, with its fields
    set from the data, each checked against the kind of the field the new one has.

    >>> watch = ConceptDrift("kswin")
    >>> for i in range(400):
    ...     _ = watch.update(float(i % 3 == 0), ts_ms=i)
    >>> again = restore_concept(concept_state(watch))
    >>> [again.update(1.0, ts_ms=400) == watch.update(1.0, ts_ms=400), again.seen]
    [True, 401]
    """
    if state.history < 1:
        raise ValueError(f"a concept detector's history must be >= 1, got {state.history}")
    if len(state.errors) != len(state.times) or len(state.errors) > state.history:
        raise ValueError("a concept detector's errors and times do not match its history")
    concept = ConceptDrift(state.name, history=state.history)
    concept._errors.extend(float(e) for e in state.errors)
    concept._times.extend(int(t) for t in state.times)
    concept._since_detection = state.since_detection
    concept.seen = state.seen
    _set_fields(concept._detector, state.detector, state.name)
    return concept


def _fields(detector: Any) -> dict[str, Any]:
    return {
        name: _plain(value, f"{type(detector).__name__}.{name}")
        for name, value in vars(detector).items()
        if not callable(value) or _is_rust_state(value)
    }


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, np.generic):  # KSWIN keeps scipy's p-value, a numpy float
        return value.item()
    if isinstance(value, _PRIMITIVE):
        return value
    if isinstance(value, deque | list):
        return [_plain(item, where) for item in value]
    if isinstance(value, random.Random):
        version, internal, gauss = value.getstate()
        return {"random": [version, list(internal), gauss]}
    if isinstance(value, _RIVER_STATS):
        return {"stat": _fields(value)}
    if _is_rust_state(value):
        return {"rust": bytes(value.__getstate__())}
    raise TypeError(f"cannot checkpoint {where} of type {type(value).__name__}")


def _set_fields(target: Any, fields: dict[str, Any], where: str) -> None:
    current = vars(target)
    for name, data in fields.items():
        if name not in current or (callable(current[name]) and not _is_rust_state(current[name])):
            raise ValueError(f"{where} has no field {name!r} to restore")
        current[name] = _restored(current[name], data, f"{where}.{name}")


def _restored(template: Any, data: Any, where: str) -> Any:
    """``data`` as the kind of value ``template`` (the new detector's field) is."""
    if isinstance(template, _PRIMITIVE):
        if not isinstance(data, _PRIMITIVE):
            raise ValueError(f"{where}: expected a number, found {type(data).__name__}")
        return data
    if isinstance(template, deque | list):
        if not isinstance(data, list) or not all(isinstance(x, _PRIMITIVE) for x in data):
            raise ValueError(f"{where}: expected a list of numbers")
        if isinstance(template, deque):
            return deque(data, maxlen=template.maxlen)
        return list(data)
    if isinstance(template, random.Random):
        found = data.get("random") if isinstance(data, dict) else None
        if not (isinstance(found, list) and len(found) == 3 and isinstance(found[1], list)):
            raise ValueError(f"{where}: expected a random generator's state")
        if not all(type(x) is int for x in found[1]):
            raise ValueError(f"{where}: a random generator's state is integers")
        template.setstate((found[0], tuple(found[1]), found[2]))
        return template
    if isinstance(template, _RIVER_STATS):
        found = data.get("stat") if isinstance(data, dict) else None
        if not isinstance(found, dict):
            raise ValueError(f"{where}: expected a river statistic's fields")
        _set_fields(template, found, where)
        return template
    if _is_rust_state(template):
        found = data.get("rust") if isinstance(data, dict) else None
        if not isinstance(found, bytes):
            raise ValueError(f"{where}: expected ADWIN's state bytes")
        try:
            template.__setstate__(found)
        except BaseException as exc:
            if not _is_panic(exc) and not isinstance(exc, Exception):
                raise
            raise ValueError(f"{where}: ADWIN refused its state ({exc})") from None
        return template
    raise ValueError(f"{where}: cannot restore a {type(template).__name__}")


def _is_rust_state(value: Any) -> bool:
    return type(value).__module__.startswith("river._river_rust")


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"
