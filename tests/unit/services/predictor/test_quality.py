"""The predictor's feature watch: refused values and unknown features, as data_quality alerts."""

from __future__ import annotations

from services.predictor.quality import OTHER, FeatureWatch
from shared.core.schema import numeric_schema

SCHEMA = numeric_schema(["a", "b"])


def _feed(watch: FeatureWatch, version: int, events: list[dict], refused: list[str]) -> list:
    return watch.observe(version, SCHEMA, events, refused, ts=1_700_000_000_000)


def test_refused_values_fire_once_and_resolve_when_back_under_the_threshold() -> None:
    watch = FeatureWatch("m", threshold=0.1, window=100)
    assert _feed(watch, 1, [{"a": 1, "b": 2}] * 50, ["a"] * 20) == []  # half a window
    [fired] = _feed(watch, 1, [{"a": 1, "b": 2}] * 50, [])
    assert (fired.state, fired.feature, fired.kind) == ("firing", "a", "data_quality")
    assert fired.statistic == 0.2 and "20.0% of the last 100 events" in fired.message
    assert _feed(watch, 1, [{"a": 1, "b": 2}] * 100, ["a"] * 9) == []  # 9%: hysteresis holds
    [resolved] = _feed(watch, 1, [{"a": 1, "b": 2}] * 100, ["a"] * 2)
    assert resolved.state == "resolved" and resolved.alert_id == fired.alert_id


def test_an_unknown_feature_is_said_once_per_version() -> None:
    watch = FeatureWatch("m", threshold=0.1, window=10)
    events = [{"a": 1, "b": 2, "new": "x"}] * 2 + [{"a": 1, "b": 2}] * 8
    [said] = _feed(watch, 1, events, [])
    assert (said.feature, said.severity, said.version) == ("new", "info", 1)
    assert "v1's schema does not know it" in said.message
    assert _feed(watch, 1, events, []) == []  # once
    assert [a.feature for a in _feed(watch, 2, events, [])] == ["new"]  # a new version: again
    wide = FeatureWatch("m", threshold=0.1, window=20)
    rare = [{"a": 1, "b": 2, "rare": 1}] + [{"a": 1, "b": 2}] * 19  # 5%: under the threshold
    assert _feed(wide, 1, rare, []) == []


def test_unknown_names_are_bounded_whatever_producers_send() -> None:
    watch = FeatureWatch("m", threshold=0.5, window=1_000, max_names=3)
    _feed(watch, 1, [{"a": 1, f"f{i}": 0} for i in range(10)], [])
    counts = watch.unknown_counts()
    assert len(counts) == 4 and counts[OTHER] == 7
