"""The alert book of one model version: where statistics become alerts, for every kind alike.

Every alert kind (data drift, prediction drift, concept drift, performance) goes through the same
:class:`~shared.stats.alert_gate.AlertGate`, one per ``(kind, feature)``: a minimum sample count,
hysteresis and a cooldown. The analytics hand the book a statistic and, when it may fire, its
:class:`Evidence`; the book turns the gate's transition into the wire message, a
:class:`~shared.core.messages.DriftAlert`, and keeps the ones firing until they resolve.

Alert ids derive from what they are about (model, version, kind, feature and the episode's
number), so a monitor that replays the same events raises the same alerts with the same ids.

>>> book = AlertBook("churn", 3, hysteresis=0.2, cooldown_ms=0)
>>> gate = book.gate("performance", "accuracy", 0.8, min_samples=1, direction="below")
>>> why = Evidence("rolling-accuracy", 0.7, 0.8, 100, "critical", "accuracy fell")
>>> fired = book.judge(gate, "performance", "accuracy", 0.7, samples=100, ts=5, evidence=why)
>>> fired.state, fired.version, sorted(book.firing)
('firing', 3, [('performance', 'accuracy')])
>>> book.judge(gate, "performance", "accuracy", 0.99, samples=100, ts=9, evidence=why).state
'resolved'
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from shared.core.messages import AlertKind, DriftAlert, Severity
from shared.stats.alert_gate import AlertGate, GateState, gate_state, restore_gate

NAMESPACE = uuid.UUID("6f1c1d52-5f43-4c8e-9a55-6d0f3c1f7a10")
"""Of the alert and retrain-request ids (uuid5): the same cause always gets the same id."""

Key = tuple[str, str | None]
"""``(kind, feature)``: one gate and at most one firing alert each."""


@dataclass(frozen=True)
class Evidence:
    """What an alert says when it fires: the detector, the statistic against its threshold, the
    window it was measured over, how bad it is, and a sentence for people."""

    detector: str
    statistic: float
    threshold: float
    window: int
    severity: Severity
    message: str


class AlertBook:
    """The gates and firing alerts of one model version."""

    def __init__(self, model: str, version: int, *, hysteresis: float, cooldown_ms: int) -> None:
        self.model = model
        self.version = version
        self.hysteresis = hysteresis
        self.cooldown_ms = cooldown_ms
        self.gates: dict[Key, AlertGate] = {}
        self.firing: dict[Key, DriftAlert] = {}
        self.episodes: dict[Key, int] = {}

    def gate(
        self,
        kind: AlertKind,
        feature: str | None,
        threshold: float,
        *,
        min_samples: int,
        direction: Literal["above", "below"] = "above",
        cooldown_ms: int | None = None,
    ) -> AlertGate:
        """The gate of ``(kind, feature)``, made on first use (with the book's hysteresis and
        cooldown unless told otherwise)."""
        key = (kind, feature)
        found = self.gates.get(key)
        if found is None:
            found = self.gates[key] = AlertGate(
                threshold,
                hysteresis=self.hysteresis,
                min_samples=min_samples,
                cooldown_ms=self.cooldown_ms if cooldown_ms is None else cooldown_ms,
                direction=direction,
            )
        return found

    def judge(
        self,
        gate: AlertGate,
        kind: AlertKind,
        feature: str | None,
        value: float,
        *,
        samples: int,
        ts: int,
        evidence: Evidence | Callable[[], Evidence] | None,
    ) -> DriftAlert | None:
        """Feed ``value`` to ``gate``; return the alert that fired or resolved, if one did.

        A firing alert carries ``evidence``; a resolved one its statistic (or, without evidence,
        the statistic it fired with). A gate that would fire without evidence does not.
        ``evidence`` may be a function that makes it, called only when the gate fires or
        resolves: most updates change nothing, and their sentences would be written for nobody.
        """
        transition = gate.update(value, samples=samples, ts_ms=ts)
        if transition is None:
            return None
        key = (kind, feature)
        made = evidence() if callable(evidence) else evidence
        if transition == "fire" and made is not None:
            return self._fire(key, kind, feature, ts, made)
        if transition == "resolve" and key in self.firing:
            return self.resolve(key, ts, statistic=None if made is None else made.statistic)
        return None

    def _fire(
        self, key: Key, kind: AlertKind, feature: str | None, ts: int, evidence: Evidence
    ) -> DriftAlert:
        episode = self.episodes.get(key, 0) + 1
        self.episodes[key] = episode
        alert = DriftAlert(
            alert_id=str(
                uuid.uuid5(NAMESPACE, f"{self.model}/{self.version}/{kind}/{feature}/{episode}")
            ),
            ts=ts,
            model=self.model,
            version=self.version,
            kind=kind,
            state="firing",
            detector=evidence.detector,
            feature=feature,
            statistic=finite(evidence.statistic),
            threshold=finite(evidence.threshold),
            window=evidence.window,
            severity=evidence.severity,
            message=evidence.message,
        )
        self.firing[key] = alert
        return alert

    def fire(self, kind: AlertKind, feature: str | None, ts: int, evidence: Evidence) -> DriftAlert:
        """A new episode of ``(kind, feature)``, whatever its gate says (a later change while
        it fires)."""
        return self._fire((kind, feature), kind, feature, ts, evidence)

    def amend(self, key: Key, message: str) -> DriftAlert:
        """The firing alert of ``key`` with another message (kept for when it resolves)."""
        updated = replace(self.firing[key], message=message)
        self.firing[key] = updated
        return updated

    def resolve(
        self, key: Key, ts: int, *, statistic: float | None = None, why: str = ""
    ) -> DriftAlert:
        """The resolved form of a firing alert (same ``alert_id``)."""
        fired = self.firing.pop(key)
        reason = why or "back within its threshold"
        return replace(
            fired,
            state="resolved",
            ts=ts,
            statistic=finite(fired.statistic if statistic is None else statistic),
            message=f"resolved: {reason} ({fired.message})",
        )

    def retire(self, ts: int, successor: int) -> list[DriftAlert]:
        """The version is no longer served: resolve every open alert."""
        return [
            self.resolve(key, ts, why=f"v{self.version} superseded by v{successor}")
            for key in list(self.firing)
        ]


class BookState(msgspec.Struct, frozen=True):
    """An :class:`AlertBook` as plain data."""

    model: str
    version: int
    hysteresis: float
    cooldown_ms: int
    gates: dict[tuple[str, str | None], GateState]
    firing: dict[tuple[str, str | None], DriftAlert]
    episodes: dict[tuple[str, str | None], int]


def book_state(book: AlertBook) -> BookState:
    return BookState(
        book.model,
        book.version,
        book.hysteresis,
        book.cooldown_ms,
        {key: gate_state(gate) for key, gate in book.gates.items()},
        dict(book.firing),
        dict(book.episodes),
    )


def restore_book(state: BookState) -> AlertBook:
    book = AlertBook(
        state.model, state.version, hysteresis=state.hysteresis, cooldown_ms=state.cooldown_ms
    )
    book.gates = {key: restore_gate(gate) for key, gate in state.gates.items()}
    book.firing = dict(state.firing)
    book.episodes = dict(state.episodes)
    return book


def finite(value: float) -> float:
    """A statistic fit for JSON: NaN and infinities become 0."""
    return value if math.isfinite(value) else 0.0


def replace(alert: DriftAlert, **changes: Any) -> DriftAlert:
    return msgspec.structs.replace(alert, **changes)
