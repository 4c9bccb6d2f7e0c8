"""What only the predictor sees of data quality: values refused for their kind, and features the
serving version's schema does not know.

Predictions carry the model's features only, so the monitor never sees a field the model does
not read, nor the values the predictor refused. :class:`FeatureWatch` counts both per feature over
each window of ``window`` events a predictor reads, and says, as ``data_quality`` alerts:

- a feature whose values were refused (a string that is not a number, an array...) in more than
  ``threshold`` of the window's events; resolved when a later window is back under 80% of it;
- a feature the schema does not know that starts arriving in at least ``threshold`` of a window's
  events (once per version and feature: the schema is the version's, and a new field may be what
  the next version should learn from).

Each predictor instance judges the events it reads (its partitions).

>>> from shared.core.schema import numeric_schema
>>> watch = FeatureWatch("m", threshold=0.1, window=4, max_names=10)
>>> alerts = watch.observe(1, numeric_schema(["a"]), [{"a": 1, "b": 2}] * 4, ["a", "a"], ts=1)
>>> [(a.feature, a.detector) for a in alerts]
[('a', 'predictor:refused'), ('b', 'predictor:unknown')]
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.core.messages import DriftAlert, Severity
from shared.core.schema import Schema

OTHER = "(other)"
"""Where unknown feature names are counted once ``max_names`` distinct ones were seen (the
metric's label set stays bounded, whatever producers send)."""


class FeatureWatch:
    """Refused values and unknown features per window of read events, as alerts."""

    def __init__(self, model: str, *, threshold: float, window: int, max_names: int = 50) -> None:
        if window < 1 or not 0 < threshold < 1:
            raise ValueError("the window needs an event and the threshold a share in (0, 1)")
        self.model = model
        self.threshold = threshold
        self.window = window
        self.max_names = max_names
        self._version: int | None = None
        self._events = 0
        self._refused: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter()
        self._firing: dict[str, str] = {}
        """Refused-values alerts firing, by feature: their ids."""
        self._announced: set[str] = set()
        """Unknown features already reported for this version."""
        self._names: set[str] = set()

    def observe(
        self,
        version: int,
        schema: Schema,
        features: Iterable[Mapping[str, Any]],
        refused: Sequence[str],
        *,
        ts: int,
    ) -> list[DriftAlert]:
        """Count one batch: the decoded events' features and the features its refusals named."""
        if version != self._version:
            self._version, self._announced = version, set()
        known = frozenset(schema.names)
        for values in features:
            self._events += 1
            if not known.issuperset(values):
                for name in values.keys() - known:
                    self._unknown[self._bounded(name)] += 1
        self._refused.update(refused)
        if self._events < self.window:
            return []
        return self._judge(ts)

    def unknown_counts(self) -> Counter[str]:
        """Unknown features counted in the current window."""
        return Counter(self._unknown)

    def _bounded(self, name: str) -> str:
        if name in self._names or len(self._names) < self.max_names:
            self._names.add(name)
            return name
        return OTHER

    def _judge(self, ts: int) -> list[DriftAlert]:
        events, refused, unknown = self._events, self._refused, self._unknown
        self._events, self._refused, self._unknown = 0, Counter(), Counter()
        alerts = []
        for name in sorted(set(refused) | set(self._firing)):
            share = refused.get(name, 0) / events
            if name not in self._firing and share > self.threshold:
                alert_id = uuid.uuid4().hex
                self._firing[name] = alert_id
                message = (
                    f"{share:.1%} of the last {events} events had a value of feature {name} "
                    f"refused for its kind (dead letters, reason bad_feature)"
                )
                alerts.append(self._alert(alert_id, "firing", name, share, events, ts, message))
            elif name in self._firing and share < 0.8 * self.threshold:
                message = f"values of feature {name} refused in {share:.1%} of the last {events}"
                alert_id = self._firing.pop(name)
                alerts.append(self._alert(alert_id, "resolved", name, share, events, ts, message))
        for name, count in sorted(unknown.items()):
            share = count / events
            if name in self._announced or share < self.threshold:
                continue
            self._announced.add(name)
            message = (
                f"feature {name} arrives in {share:.1%} of the last {events} events, and "
                f"v{self._version}'s schema does not know it (it is not scored)"
            )
            alert_id = uuid.uuid4().hex
            alerts.append(
                self._alert(alert_id, "firing", name, share, events, ts, message, "info", "unknown")
            )
        return alerts

    def _alert(
        self,
        alert_id: str,
        state: str,
        feature: str,
        share: float,
        events: int,
        ts: int,
        message: str,
        severity: Severity = "warning",
        check: str = "refused",
    ) -> DriftAlert:
        return DriftAlert(
            alert_id=alert_id,
            ts=ts,
            model=self.model,
            version=self._version or 1,
            kind="data_quality",
            state="firing" if state == "firing" else "resolved",
            detector=f"predictor:{check}",
            feature=feature,
            statistic=share,
            threshold=self.threshold,
            window=events,
            severity=severity,
            message=message,
        )
