"""Rolling error metrics of one model version, over a count window and an event-time window.

River's metrics do the arithmetic (``utils.Rolling`` over the last N labelled events,
``utils.TimeRolling`` over the last T seconds of event time). A window that holds no labelled event
has no value, None, never zero.

>>> m = RollingMetrics("regression", window=2, period_s=60)
>>> m.values()["mae"] is None
True
>>> for ts, (y, p) in enumerate([(1.0, 2.0), (2.0, 2.0), (3.0, 5.0)]):
...     m.update(y, p, None, ts_ms=ts * 1000)
>>> m.values()["mae"], m.time_values()["mae"]
(1.0, 1.0)
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any

from river import metrics, utils

from shared.modeling import Task

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
PROBABILISTIC: dict[str, type[metrics.base.Metric]] = {
    "log_loss": metrics.LogLoss,
    "roc_auc": metrics.ROCAUC,
}
"""Need the positive-class probability, so only for binary classifiers whose scores are in [0, 1]."""


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
        self.period = dt.timedelta(seconds=period_s)
        self._positive = positive
        if task == "regression":
            chosen = dict(REGRESSION)
        elif positive is None:
            chosen = dict(MULTICLASS)
        else:
            chosen = dict(BINARY) | (dict(PROBABILISTIC) if probabilities else {})
        self._by_count: dict[str, Any] = {
            name: utils.Rolling(kind, window_size=window) for name, kind in chosen.items()
        }
        self._by_time: dict[str, Any] = {
            name: utils.TimeRolling(kind, period=self.period) for name, kind in chosen.items()
        }
        self._count = 0
        self._times: deque[int] = deque()

    def update(self, y_true: Any, y_pred: Any, score: float | None, ts_ms: int) -> None:
        """Add one labelled event: its label, its prediction, its score and its event time."""
        # Naive UTC: river's TimeRolling compares with a naive datetime of its own.
        moment = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).replace(tzinfo=None)
        if self.task == "classification" and self._positive is not None:
            y_true, y_pred = y_true == self._positive, y_pred == self._positive
        for name in self._by_count:
            value = score if name in PROBABILISTIC else y_pred
            if value is None:
                continue
            self._by_count[name].update(y_true, value)
            self._by_time[name].update(y_true, value, t=moment)
        self._count += 1
        self._times.append(ts_ms)
        horizon = ts_ms - self.period.total_seconds() * 1000
        while self._times and self._times[0] <= horizon:
            self._times.popleft()

    @property
    def count(self) -> int:
        """Labelled events in the count window."""
        return min(self._count, self.window)

    @property
    def time_count(self) -> int:
        """Labelled events in the time window, as of the latest event."""
        return len(self._times)

    def values(self) -> dict[str, float | None]:
        """Each metric over the count window; None while it is empty."""
        return {name: float(m.get()) if self.count else None for name, m in self._by_count.items()}

    def time_values(self) -> dict[str, float | None]:
        """Each metric over the time window; None while it is empty."""
        return {
            name: float(m.get()) if self.time_count else None for name, m in self._by_time.items()
        }
