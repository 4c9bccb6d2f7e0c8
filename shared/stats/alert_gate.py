"""When a statistic becomes an alert: a minimum sample count, hysteresis and a cooldown.

One gate per (model, version, kind, feature). It fires once when the statistic crosses its
threshold on enough samples, stays firing while the statistic is above a lower clearing level,
resolves once below it, and after resolving does not fire again until the cooldown has passed, so one
shift raises one alert and noise around the threshold raises none. Pure: time comes in as event time.

>>> gate = AlertGate(threshold=0.25, hysteresis=0.2, min_samples=100, cooldown_ms=60_000)
>>> [gate.update(stat, samples=500, ts_ms=t) for t, stat in enumerate([0.1, 0.3, 0.4, 0.22, 0.19, 0.3])]
[None, 'fire', None, None, 'resolve', None]
>>> gate.update(0.3, samples=500, ts_ms=70_000)
'fire'
"""

from __future__ import annotations

from typing import Literal

import msgspec

Transition = Literal["fire", "resolve"]


class AlertGate:
    """Turns a stream of statistic values into fire and resolve transitions."""

    def __init__(
        self,
        threshold: float,
        *,
        hysteresis: float = 0.2,
        min_samples: int = 100,
        cooldown_ms: int = 300_000,
        direction: Literal["above", "below"] = "above",
    ) -> None:
        if not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis must be in [0, 1), got {hysteresis}")
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples}")
        if cooldown_ms < 0:
            raise ValueError(f"cooldown_ms must be >= 0, got {cooldown_ms}")
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.min_samples = min_samples
        self.cooldown_ms = cooldown_ms
        self.direction = direction
        self._firing = False
        self._resolved_at: int | None = None

    @property
    def firing(self) -> bool:
        return self._firing

    @property
    def clear_level(self) -> float:
        """The level the statistic must get back past for the alert to resolve."""
        margin = abs(self.threshold) * self.hysteresis
        return self.threshold - margin if self.direction == "above" else self.threshold + margin

    def update(self, statistic: float, *, samples: int, ts_ms: int) -> Transition | None:
        """Feed the latest value; return ``"fire"``, ``"resolve"`` or None (no change)."""
        if samples < self.min_samples:
            return None
        above = self.direction == "above"
        if not self._firing:
            crossed = statistic > self.threshold if above else statistic < self.threshold
            cooling = self._resolved_at is not None and ts_ms - self._resolved_at < self.cooldown_ms
            if crossed and not cooling:
                self._firing = True
                return "fire"
            return None
        cleared = statistic < self.clear_level if above else statistic > self.clear_level
        if cleared:
            self._firing = False
            self._resolved_at = ts_ms
            return "resolve"
        return None


class GateState(msgspec.Struct, frozen=True, array_like=True):
    """An :class:`AlertGate` as plain data, for the monitor's checkpoints."""

    threshold: float
    hysteresis: float
    min_samples: int
    cooldown_ms: int
    direction: Literal["above", "below"]
    firing: bool
    resolved_at: int | None


def gate_state(gate: AlertGate) -> GateState:
    return GateState(
        gate.threshold,
        gate.hysteresis,
        gate.min_samples,
        gate.cooldown_ms,
        gate.direction,
        gate.firing,
        gate._resolved_at,
    )


def restore_gate(state: GateState) -> AlertGate:
    """The gate ``state`` describes (its constructor checks the values again).

    >>> gate = AlertGate(0.25, min_samples=1, cooldown_ms=0)
    >>> gate.update(0.3, samples=1, ts_ms=1)
    'fire'
    >>> restore_gate(gate_state(gate)).update(0.0, samples=1, ts_ms=2)
    'resolve'
    """
    gate = AlertGate(
        state.threshold,
        hysteresis=state.hysteresis,
        min_samples=state.min_samples,
        cooldown_ms=state.cooldown_ms,
        direction=state.direction,
    )
    gate._firing = state.firing
    gate._resolved_at = state.resolved_at
    return gate
