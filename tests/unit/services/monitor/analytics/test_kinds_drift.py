"""Drift tests that fit each feature's kind, through the monitor's analytics: a category's share
moving, a 0/1 flag and a 3-level integer shifting, each raise one data-drift alert that names the
feature (and for a category, the categories that moved); the same features unchanged stay quiet."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.watch import ModelWatch
from services.monitor.join import Scored
from services.monitor.reorder import Reorder
from services.monitor.state import decode_analytics, encode_analytics
from shared.core.schema import FeatureSpec, Schema
from shared.stats.profile import build_profile

SCHEMA = Schema(
    [
        FeatureSpec("amount", "numeric"),
        FeatureSpec("country", "categorical"),
        FeatureSpec("is_new", "boolean"),
        FeatureSpec("plan", "numeric"),  # an integer code of three levels
    ]
)
COUNTRIES = ["DE", "FR", "IT", "ES", "NL"]


def _rows(n: int, seed: int, *, de: float = 0.1, new: float = 0.47, plan: Any = None) -> list:
    rng = np.random.default_rng(seed)
    others = (1 - de) / 4
    country = rng.choice(COUNTRIES, size=n, p=[de, others, others, others, others])
    levels = plan or [0.5, 0.3, 0.2]
    return [
        [
            float(rng.normal()),
            str(country[i]),
            bool(rng.random() < new),
            int(rng.choice([1, 2, 3], p=levels)),
        ]
        for i in range(n)
    ]


def _watch() -> ModelWatch:
    reference = build_profile(SCHEMA.matrix(_rows(5_000, seed=0)), SCHEMA, scores=None)
    info = VersionInfo(1, "classification", SCHEMA.names, reference, [0, 1])
    return ModelWatch("m", MonitorConfig(), {1: info}.__getitem__)


def _scored(rows: list, start: int) -> list[Scored]:
    return [
        Scored(
            f"e{start + i}",
            1_700_000_000_000 + (start + i) * 100,
            dict(zip(SCHEMA.names, row, strict=True)),
            0,
            None,
            1,
        )
        for i, row in enumerate(rows)
    ]


def _drift_alerts(watch: ModelWatch, rows: list, start: int = 0) -> list:
    raised = []
    for signals in watch.feed(_scored(rows, start)):
        raised += [a for a in signals.alerts if a.kind == "data_drift"]
    return raised


def test_a_stationary_mixed_stream_stays_quiet() -> None:
    assert _drift_alerts(_watch(), _rows(20_000, seed=1)) == []


@pytest.mark.parametrize(
    ("change", "feature", "words"),
    [
        ({"de": 0.4}, "country", r"shares moved most: DE 1\d% → [234]\d%"),
        ({"new": 0.8}, "is_new", r"chi-square [\d.]+ \(p="),
        ({"plan": [0.2, 0.3, 0.5]}, "plan", r"chi-square [\d.]+ \(p="),
    ],
)
def test_a_shift_of_each_kind_raises_one_alert_naming_it(
    change: dict[str, Any], feature: str, words: str
) -> None:
    watch = _watch()
    assert _drift_alerts(watch, _rows(3_000, seed=2)) == []
    raised = _drift_alerts(watch, _rows(3_000, seed=3, **change), start=3_000)
    assert [(a.feature, a.state) for a in raised] == [(feature, "firing")], raised
    assert re.search(words, raised[0].message), raised[0].message
    assert raised[0].detector == "psi+chi2"


def test_category_windows_survive_a_checkpoint() -> None:
    watch = _watch()
    _drift_alerts(watch, _rows(2_000, seed=4))
    again, _ = decode_analytics(encode_analytics(watch, Reorder()))
    shifted = _rows(3_000, seed=5, de=0.4)
    assert (
        [a.feature for a in _drift_alerts(again, shifted, 2_000)]
        == [a.feature for a in _drift_alerts(watch, shifted, 2_000)]
        == ["country"]
    )


def _alerts_of(watch: ModelWatch, rows: list, start: int, kind: str) -> list:
    raised = []
    for signals in watch.feed(_scored(rows, start)):
        raised += [a for a in signals.alerts if a.kind == kind]
    return raised


def _with(rows: list, column: int, value: Any, every: int) -> list:
    """``rows`` with ``value`` in ``column`` of every ``every``-th row."""
    return [
        [value if c == column and i % every == 0 else v for c, v in enumerate(row)]
        for i, row in enumerate(rows)
    ]


@pytest.mark.parametrize(
    ("column", "value", "every", "feature", "fired", "now"),
    [
        (0, None, 3, "amount", r"missing in 1\d\.\d% of the last 1000 events \(training: 0\.0%\)",
         r"^missing in 33\.\d%"),
        (1, "XX", 4, "country", r"1\d\.\d% of its values are categories never seen in training",
         r"^25\.\d% of its values are categories never seen in training \(training: 0\.0%\)"),
        (0, 1e6, 4, "amount", r"1\d\.\d% of its values outside the training range \[-4",
         r"^25\.\d% of its values outside the training range"),
        (1, None, 1, "country", r"missing in \d+\.\d% of the last 1000 events",
         r"^missing from every one of the last 1000 events \(it stopped arriving\)"),
    ],
)  # fmt: skip
def test_a_quality_problem_raises_one_alert_and_resolves_when_the_stream_recovers(
    column: int, value: Any, every: int, feature: str, fired: str, now: str
) -> None:
    """Fired as the window fills past the threshold (10 points over training), described as it
    stands in the status, and resolved once the stream is back to normal."""
    watch = _watch()
    assert _alerts_of(watch, _rows(2_000, seed=6), 0, "data_quality") == []
    bad = _with(_rows(2_000, seed=7), column, value, every)
    raised = _alerts_of(watch, bad, 2_000, "data_quality")
    assert [(a.feature, a.state) for a in raised] == [(feature, "firing")], raised
    assert re.search(fired, raised[0].message), raised[0].message
    said = watch.versions[1].quality[feature].describe()
    assert re.search(now, said), said
    recovered = _alerts_of(watch, _rows(3_000, seed=8), 4_000, "data_quality")
    assert [(a.feature, a.state) for a in recovered] == [(feature, "resolved")], recovered
    assert watch.versions[1].quality[feature].missing <= 0.01
