"""The demo's mixed stream: the kinds real event streams carry, gaps, and a category shift."""

from __future__ import annotations

from collections import Counter

import pytest

from services.cli.demo.synthetic import Scenario, SyntheticStream
from shared.models.algorithms import algorithm
from shared.models.signing import Signer
from shared.models.training import train


def test_a_mixed_stream_has_a_category_a_boolean_and_gaps() -> None:
    events = list(SyntheticStream(Scenario(mixed=True), seed=1).events(4_000))
    assert Scenario(mixed=True).schema.kinds["channel"] == "categorical"
    channels = Counter(e.features["channel"] for e in events)
    assert abs(channels["phone"] / 4_000 - 0.1) < 0.02 and set(channels) == {
        "web", "app", "store", "phone"
    }  # fmt: skip
    assert {type(e.features["is_new"]) for e in events} == {bool}
    gaps = sum(e.features["x9"] is None for e in events) / 4_000
    assert 0.02 < gaps < 0.04


def test_categorical_drift_moves_phone_from_a_tenth_to_four_tenths() -> None:
    scenario = Scenario(mixed=True, drift="categorical", at=2_000)
    events = list(SyntheticStream(scenario, seed=2).events(6_000))
    before = sum(e.features["channel"] == "phone" for e in events[:2_000]) / 2_000
    after = sum(e.features["channel"] == "phone" for e in events[2_000:]) / 4_000
    assert abs(before - 0.1) < 0.02 and abs(after - 0.4) < 0.02
    with pytest.raises(ValueError, match="needs a mixed scenario"):
        Scenario(drift="categorical")


def test_a_model_learns_the_mixed_concept() -> None:
    data = SyntheticStream(Scenario(mixed=True), seed=3).dataset(4_000)
    candidate = train(data, model="m", algo=algorithm("logistic"), signer=Signer.hmac(b"k" * 16))
    assert candidate.metrics["accuracy"] > 0.85
    assert candidate.schema.kinds["is_new"] == "boolean" and candidate.schema.missing
