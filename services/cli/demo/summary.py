"""What a demo run showed, from what is on the topics: a plain function of the records.

>>> facts = RunFacts("classification", "sudden", drift_at=2, drift_sent_s=100.0, start_ts=0,
...     step_ms=10, labels={"e0": 1, "e1": 0, "e2": 1, "e3": 1}, index={"e0": 0, "e1": 1, "e2": 2, "e3": 3})
>>> predictions = [{"event_id": "e0", "version": 1, "prediction": 1},
...     {"event_id": "e1", "version": 1, "prediction": 0}, {"event_id": "e2", "version": 1,
...     "prediction": 0}, {"event_id": "e3", "version": 2, "prediction": 1}]
>>> alerts = [(101_500, {"kind": "concept_drift", "state": "firing", "ts": 25})]
>>> s = summarize(facts, predictions, alerts, active_version=2, dead_letters=0)
>>> s["drift_detected_at"], s["detection_delay_s"], s["error_before"], s["error_after_drift"], s["error_after"]
(2, 1.5, 0.0, 1.0, 0.0)
>>> s["events_lost"], s["promoted_version"]
(0, 2)

Two features shifted together fire two alerts in one batch, with one record timestamp:

>>> both = [(101_000, {"kind": "data_drift", "state": "firing", "ts": ts, "feature": f})
...     for ts, f in ((30, "x7"), (20, "x2"))]
>>> covariate = RunFacts(**{**facts.__dict__, "drift": "covariate"})
>>> summarize(covariate, predictions, both, active_version=2, dead_letters=0)["drift_detected_at"]
2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.core.kinds import Task
from shared.stats.loss import event_losses


@dataclass(frozen=True)
class RunFacts:
    task: Task
    drift: str
    drift_at: int
    """Index of the first drifted event."""
    drift_sent_s: float
    """Wall time (epoch seconds) the first drifted event was sent."""
    start_ts: int
    step_ms: int
    labels: dict[str, Any]
    index: dict[str, int]


def _error(task: Task, pairs: list[tuple[Any, Any]]) -> float | None:
    if not pairs:
        return None
    losses = event_losses(task, [t for t, _ in pairs], [p for _, p in pairs])
    return round(float(np.mean(losses)), 4)


def summarize(
    facts: RunFacts,
    predictions: list[dict[str, Any]],
    alerts: list[tuple[int, dict[str, Any]]],
    *,
    active_version: int | None,
    dead_letters: int,
    initial_version: int = 1,
) -> dict[str, Any]:
    """``alerts`` are ``(record timestamp in ms, alert)``; predictions are of this run's model."""
    first: dict[str, dict[str, Any]] = {}
    for prediction in predictions:
        first.setdefault(prediction["event_id"], prediction)
    before: list[tuple[Any, Any]] = []
    after_drift: list[tuple[Any, Any]] = []
    after_swap: list[tuple[Any, Any]] = []
    for event_id, prediction in first.items():
        if event_id not in facts.labels:
            continue
        pair = (facts.labels[event_id], prediction["prediction"])
        if prediction["version"] == initial_version:
            (before if facts.index[event_id] < facts.drift_at else after_drift).append(pair)
        elif prediction["version"] == active_version and active_version != initial_version:
            after_swap.append(pair)
    drift_ts = facts.start_ts + facts.drift_at * facts.step_ms
    wanted = "data_drift" if facts.drift in ("covariate", "categorical") else "concept_drift"
    found = sorted(
        (
            (stamp, alert)
            for stamp, alert in alerts
            if alert["kind"] == wanted and alert["state"] == "firing" and alert["ts"] >= drift_ts
        ),
        key=lambda pair: (pair[0], pair[1]["ts"]),  # alerts sent together share a timestamp
    )
    detected_at = delay_s = None
    if found:
        stamp, alert = found[0]
        detected_at = (alert["ts"] - facts.start_ts) // facts.step_ms
        delay_s = round(stamp / 1000 - facts.drift_sent_s, 2)
    lost = sum(1 for event_id in facts.labels if event_id not in first)
    named = [
        alert
        for _, alert in sorted(alerts, key=lambda pair: pair[0])
        if alert["state"] == "firing" and alert["ts"] >= drift_ts
    ]
    return {
        "task": facts.task,
        "drift": facts.drift,
        "drift_injected_at": facts.drift_at,
        "drift_injected_ts": facts.start_ts + facts.drift_at * facts.step_ms,
        "drift_detected_at": detected_at,
        "detection_delay_events": None if detected_at is None else detected_at - facts.drift_at,
        "detection_delay_s": delay_s,
        "detected_by": wanted if found else None,
        "initial_version": initial_version,
        "promoted_version": active_version,
        "error_metric": "mse" if facts.task == "regression" else "error_rate",
        "error_before": _error(facts.task, before),
        "error_after_drift": _error(facts.task, after_drift),
        "error_after": _error(facts.task, after_swap),
        "events_in": len(facts.labels),
        "predictions_out": len(predictions),
        "dead_letters": dead_letters,
        "events_lost": lost,
        "found": [_said(alert) for alert in named[:5]],
    }


def _said(alert: dict[str, Any]) -> str:
    """One alert as the summary names it: kind, feature, and its message.

    >>> _said({"kind": "data_drift", "feature": "channel", "message": "feature channel drifted"})
    'data_drift on channel: feature channel drifted'
    """
    where = f" on {alert['feature']}" if alert.get("feature") else ""
    message = str(alert.get("message", ""))
    return f"{alert['kind']}{where}: {message[:300]}"
