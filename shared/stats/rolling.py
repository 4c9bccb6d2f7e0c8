"""Rolling error metrics of one model version, over a count window and an event-time window.

River's metrics do the arithmetic, updated as an event enters a window and reverted as it leaves
(over the last N labelled events, and over the last T seconds of event time). A window that holds
no labelled event has no value, None, never zero.

>>> m = RollingMetrics("regression", window=2, period_s=60)
>>> m.values()["mae"] is None
True
>>> for ts, (y, p) in enumerate([(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]):
...     m.update(y, p, None, ts_ms=ts * 1000)
>>> m.values()["mae"], m.time_values()["mae"]
(1.0, 1.0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np
from river import metrics

from shared.core.kinds import Task

REGRESSION: dict[str, type[metrics.base.Metric]] = {
    "mse": metrics.MSE,
    "mae": metrics.MAE,
    "rmse": metrics.RMSE,
    "r2": metrics.R2,
}
BINARY: dict[str, type[metrics.base.Metric]] = {
    "accuracy": metrics.Accuracy,
    "precision": metrics.Precision,
    "recall": metrics.Recall,
    "f1": metrics.F1,
}
MULTICLASS: dict[str, type[metrics.base.Metric]] = {
    "accuracy": metrics.Accuracy,
    "precision": metrics.MacroPrecision,
    "recall": metrics.MacroRecall,
    "f1": metrics.MacroF1,
}
PROBABILISTIC: dict[str, type[metrics.base.Metric] | None] = {
    "log_loss": None,
    "roc_auc": None,
}
"""Need the positive-class probability, so only for binary classifiers whose scores are in [0, 1].
ROC AUC is computed exactly when read (:func:`roc_auc`), not by river's ``ROCAUC``: that one
approximates with 10 thresholds and updates 10 confusion matrices per event. Log-loss is a window
sum of river's own per-event term (:class:`WindowLogLoss`)."""


class WindowLogLoss:
    """River's ``LogLoss`` over a sliding window, at a fraction of its cost.

    Each event's term is river's (``-log`` of the clamped probability given to the true class),
    computed once when the event enters and kept with it, so leaving costs one subtraction. River's
    metric recomputes the term through three layers of calls on entry and again on exit, which was
    half of the monitor's rolling-metric time. The running sum is re-added exactly once per
    window's worth of exits, so rounding cannot build up on a long stream.

    >>> window = WindowLogLoss()
    >>> terms = [window.term(y, p) for y, p in [(True, 0.9), (False, 0.1), (False, 0.2), (True, 0.65)]]
    >>> for t in terms:
    ...     window.add(t)
    >>> round(window.get(), 6)  # river's LogLoss docstring gives 0.216162 for the same four events
    0.216162
    """

    def __init__(self) -> None:
        self._sum = 0.0
        self._count = 0
        self._terms: deque[float | None] = deque()
        """One per event in the window; None for an event without a score, which has no term."""
        self._exits = 0

    @staticmethod
    def term(y_true: Any, probability: float | None) -> float | None:
        if probability is None:
            return None
        p_true = min(max(probability, 1e-15), 1 - 1e-15)  # river's LogLoss._clamp_proba
        return -math.log(p_true) if y_true else -math.log(1 - p_true)

    def add(self, term: float | None) -> None:
        self._terms.append(term)
        if term is not None:
            self._sum += term
            self._count += 1

    def drop_oldest(self) -> None:
        term = self._terms.popleft()
        if term is not None:
            self._sum -= term
            self._count -= 1
        self._exits += 1
        if self._exits >= len(self._terms):
            self._exits = 0
            self._sum = math.fsum(t for t in self._terms if t is not None)

    def get(self) -> float:
        return self._sum / self._count if self._count else 0.0


def roc_auc(truth: Iterable[bool], scores: Iterable[float]) -> float:
    """Exact ROC AUC (the Mann-Whitney statistic, ties counted half); 0 with one class only.

    >>> roc_auc([False, True, False, True], [0.1, 0.8, 0.4, 0.35])
    0.75
    """
    y = np.fromiter(truth, dtype=bool)
    s = np.fromiter(scores, dtype=float)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return 0.0
    from scipy.stats import rankdata  # noqa: PLC0415 - scipy.stats is slow to import

    ranks = rankdata(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


MAX_TIME_WINDOW_EVENTS = 50_000
"""The time window keeps each of its events (to revert it when it ages out); past this many, the
oldest leave early, so memory stays bounded on a fast stream."""


class _Window:
    """River metrics over a sliding window: each event is added as it comes and taken out when it
    leaves.

    Regression metrics are river's, updated and reverted per event. Classification metrics all
    read one river confusion matrix; the window keeps a count per (label, prediction) pair, and the
    matrix is built from those counts (one weighted update per pair) when a value is read. An event
    costs a dict increment on entry and a decrement on exit, not a matrix update and revert in each
    window; the values are river's arithmetic on the same counts.
    """

    def __init__(
        self, chosen: dict[str, type[metrics.base.Metric] | None], classification: bool
    ) -> None:
        self.names = [name for name, kind in chosen.items() if kind is not None]
        self._pairs: dict[tuple[Any, Any], int] | None = {} if classification else None
        """(label, prediction) -> events in the window; None for regression."""
        self._kinds = {name: kind for name, kind in chosen.items() if kind is not None}
        self._read: dict[str, Any] | None = None
        """Classification metrics built at the last read, kept until the window changes."""
        self._own: list[Any] = []
        self.metrics: dict[str, Any] = {}
        """Regression metrics, updated per event."""
        if not classification:
            for name, kind in self._kinds.items():
                self.metrics[name] = kind()
                self._own.append(self.metrics[name])
        self._auc = "roc_auc" in chosen
        self._log_loss = WindowLogLoss() if "log_loss" in chosen else None
        if self._log_loss is not None:
            self.names.append("log_loss")
        self.events: deque[tuple[int, Any, Any, float | None]] = deque()

    def add(
        self, ts: int, y_true: Any, y_pred: Any, score: float | None, term: float | None
    ) -> None:
        self.push((ts, y_true, y_pred, score), term)

    def push(self, event: Event, term: float | None) -> None:
        """:meth:`add` of an event already made (both windows take the same tuple)."""
        self.events.append(event)
        pairs = self._pairs
        if pairs is not None:
            key = event[1], event[2]
            pairs[key] = pairs.get(key, 0) + 1
            self._read = None
        else:
            for metric in self._own:
                metric.update(event[1], event[2])
        if self._log_loss is not None:
            self._log_loss.add(term)

    def drop_oldest(self) -> None:
        _, y_true, y_pred, _ = self.events.popleft()
        pairs = self._pairs
        if pairs is not None:
            key = (y_true, y_pred)
            left = pairs[key] - 1
            if left:
                pairs[key] = left
            else:
                del pairs[key]
            self._read = None
        else:
            for metric in self._own:
                metric.revert(y_true, y_pred)
        if self._log_loss is not None:
            self._log_loss.drop_oldest()

    def tracks(self, name: str) -> bool:
        return name in self.names or (name == "roc_auc" and self._auc)

    def value(self, name: str) -> float | None:
        if not self.events:
            return None
        if name == "roc_auc" and self._auc:
            # Columns in C (a time window holds up to 50,000 events; the status reads it at each
            # checkpoint): None, an event without a score, becomes NaN and is left out.
            _, truth, _, scores = zip(*self.events, strict=True)
            score = np.array(scores, dtype=float)
            has_score = ~np.isnan(score)
            if not has_score.any():
                return None
            return roc_auc(np.array(truth, dtype=bool)[has_score], score[has_score])
        if name == "log_loss" and self._log_loss is not None:
            return self._log_loss.get()
        return float(self._metrics()[name].get())

    def _metrics(self) -> dict[str, Any]:
        if self._pairs is None:
            return self.metrics
        if self._read is None:
            cm = metrics.ConfusionMatrix()  # type: ignore[no-untyped-call]
            for (y_true, y_pred), count in self._pairs.items():
                cm.update(y_true, y_pred, w=float(count))  # type: ignore[no-untyped-call]
            cm.n_samples = len(self.events)
            self._read = {name: kind(cm=cm) for name, kind in self._kinds.items()}  # type: ignore[call-arg]
        return self._read

    def values(self) -> dict[str, float | None]:
        names = [*self.names, *(["roc_auc"] if self._auc else [])]
        return {name: self.value(name) for name in names}


class RollingMetrics:
    """Error metrics over the last ``window`` labelled events and the last ``period_s`` seconds."""

    def __init__(
        self,
        task: Task,
        *,
        window: int = 1_000,
        period_s: float = 3_600.0,
        positive: Any = None,
        probabilities: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.task = task
        self.window = window
        self.period_s = period_s
        self.period_ms = int(period_s * 1000)
        self._positive = positive
        self._probabilities = probabilities
        chosen: dict[str, type[metrics.base.Metric] | None]
        if task == "regression":
            chosen = dict(REGRESSION)
        elif positive is None:
            chosen = dict(MULTICLASS)
        else:
            chosen = {**BINARY, **(PROBABILISTIC if probabilities else {})}
        classification = task == "classification"
        self._binary = classification and positive is not None
        self._log_loss = "log_loss" in chosen
        self._by_count = _Window(chosen, classification)
        self._by_time = _Window(chosen, classification)

    def update(self, y_true: Any, y_pred: Any, score: float | None, ts_ms: int) -> None:
        """Add one labelled event: its label, its prediction, its score and its event time."""
        if self._binary:
            y_true, y_pred = y_true == self._positive, y_pred == self._positive
        term = WindowLogLoss.term(y_true, score) if self._log_loss else None
        event = (ts_ms, y_true, y_pred, score)
        by_count = self._by_count
        by_count.push(event, term)
        if len(by_count.events) > self.window:
            by_count.drop_oldest()
        self._by_time.push(event, term)
        horizon = ts_ms - self.period_ms
        events = self._by_time.events
        while events and (events[0][0] <= horizon or len(events) > MAX_TIME_WINDOW_EVENTS):
            self._by_time.drop_oldest()

    @property
    def count(self) -> int:
        """Labelled events in the count window."""
        return len(self._by_count.events)

    @property
    def time_count(self) -> int:
        """Labelled events in the time window, as of the latest event."""
        return len(self._by_time.events)

    def value(self, name: str) -> float | None:
        """One metric over the count window; None while it is empty (KeyError if not tracked)."""
        if not self._by_count.tracks(name):
            raise KeyError(name)
        return self._by_count.value(name)

    def values(self) -> dict[str, float | None]:
        """Each metric over the count window; None while it is empty."""
        return self._by_count.values()

    def time_values(self) -> dict[str, float | None]:
        """Each metric over the time window; None while it is empty."""
        return self._by_time.values()


Event = tuple[int, Any, Any, float | None]
"""One event in a window: event time, label, prediction and score (binary: labels and
predictions as "is the positive class")."""


class RollingState(msgspec.Struct, frozen=True):
    """:class:`RollingMetrics` as plain data: how it was made and the events of each window.
    River's metrics are rebuilt from the events (each window's arithmetic is a function of the
    events it holds), never stored."""

    task: str
    window: int
    period_s: float
    positive: Any
    probabilities: bool
    by_count: list[Event]
    by_time: list[Event]
    log_loss: list[tuple[float, int]] | None = None
    """Each window's running log-loss sum and exits since its last exact re-sum, so the restored
    sum carries on to the last bit."""


def rolling_state(rolling: RollingMetrics) -> RollingState:
    return RollingState(
        task=rolling.task,
        window=rolling.window,
        period_s=rolling.period_s,
        positive=rolling._positive,
        probabilities=rolling._probabilities,
        by_count=list(rolling._by_count.events),
        by_time=list(rolling._by_time.events),
        log_loss=None
        if rolling._by_count._log_loss is None or rolling._by_time._log_loss is None
        else [
            (rolling._by_count._log_loss._sum, rolling._by_count._log_loss._exits),
            (rolling._by_time._log_loss._sum, rolling._by_time._log_loss._exits),
        ],
    )


def restore_rolling(state: RollingState) -> RollingMetrics:
    """The metrics ``state`` describes, its windows refilled event by event.

    >>> m = RollingMetrics("classification", window=3, period_s=60, positive=1, probabilities=True)
    >>> for ts, (y, p, s) in enumerate([(1, 1, 0.9), (0, 1, 0.6), (1, 0, 0.4), (0, 0, 0.2)]):
    ...     m.update(y, p, s, ts_ms=ts * 1000)
    >>> restore_rolling(rolling_state(m)).values() == m.values()
    True
    """
    if state.task not in ("regression", "classification"):
        raise ValueError(f"unknown task {state.task!r}")
    if len(state.by_count) > state.window or len(state.by_time) > MAX_TIME_WINDOW_EVENTS:
        raise ValueError("a rolling window holds more events than it may")
    rolling = RollingMetrics(
        state.task,  # type: ignore[arg-type]
        window=state.window,
        period_s=state.period_s,
        positive=state.positive,
        probabilities=state.probabilities,
    )
    windows = ((rolling._by_count, state.by_count), (rolling._by_time, state.by_time))
    for window, events in windows:
        for ts, y_true, y_pred, score in events:
            term = WindowLogLoss.term(y_true, score) if rolling._log_loss else None
            window.add(ts, y_true, y_pred, score, term)
    if state.log_loss is not None:
        for (window, _), (total, exits) in zip(windows, state.log_loss, strict=True):
            if window._log_loss is not None:
                window._log_loss._sum, window._log_loss._exits = total, exits
    return rolling
