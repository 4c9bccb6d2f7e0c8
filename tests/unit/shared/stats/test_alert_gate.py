"""The alert gate: one shift fires once, it resolves below its clearing level, and cools down."""

from __future__ import annotations

import numpy as np
import pytest

from shared.stats.alert_gate import AlertGate


def test_one_shift_fires_once_however_the_statistic_wobbles() -> None:
    gate = AlertGate(threshold=0.25, hysteresis=0.2, min_samples=100, cooldown_ms=0)
    rng = np.random.default_rng(5)
    wobbling = 0.3 + rng.normal(scale=0.04, size=200)  # above threshold, dipping below now and then
    transitions = [gate.update(float(v), samples=1_000, ts_ms=i) for i, v in enumerate(wobbling)]
    assert min(wobbling) < 0.25  # it does cross back over the threshold...
    assert transitions.count("fire") == 1  # ...but stays above the clearing level 0.2
    assert transitions.count("resolve") == 0


def test_it_resolves_once_below_the_clearing_level_and_cools_down() -> None:
    gate = AlertGate(threshold=0.25, hysteresis=0.2, min_samples=1, cooldown_ms=1_000)
    assert gate.update(0.5, samples=10, ts_ms=0) == "fire"
    assert gate.update(0.21, samples=10, ts_ms=10) is None  # below threshold, above 0.2
    assert gate.update(0.1, samples=10, ts_ms=20) == "resolve"
    assert gate.update(0.5, samples=10, ts_ms=500) is None  # cooling down
    assert gate.update(0.5, samples=10, ts_ms=1_020) == "fire"


def test_too_few_samples_never_fire() -> None:
    gate = AlertGate(threshold=0.25, min_samples=100)
    assert [gate.update(9.9, samples=n, ts_ms=n) for n in (1, 50, 99)] == [None, None, None]
    assert gate.update(9.9, samples=100, ts_ms=100) == "fire"


def test_a_metric_where_lower_is_worse() -> None:
    gate = AlertGate(threshold=0.8, hysteresis=0.1, min_samples=1, cooldown_ms=0, direction="below")
    assert gate.clear_level == pytest.approx(0.88)
    assert [gate.update(v, samples=5, ts_ms=i) for i, v in enumerate([0.9, 0.7, 0.85, 0.9])] == [
        None,
        "fire",
        None,
        "resolve",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hysteresis": 1.0}, "hysteresis"),
        ({"min_samples": 0}, "min_samples"),
        ({"cooldown_ms": -1}, "cooldown_ms"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertGate(threshold=1.0, **kwargs)  # type: ignore[arg-type]
