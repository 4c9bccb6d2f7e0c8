"""The predictor's logic without I/O: decode, validate, score, and say why a record was refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kafka.consumer.fetcher import ConsumerRecord

from services.predictor.scoring import handle
from shared.core.messages import EventTimes
from shared.core.schema import FeatureSpec, Schema, numeric_schema
from shared.models.algorithms import Scorer, algorithm, fit
from shared.models.serving import ServingModel


def _record(offset: int, value: bytes | None, ts: int = 1_000) -> ConsumerRecord:
    return ConsumerRecord(
        topic="t.features",
        partition=0,
        leader_epoch=0,
        offset=offset,
        timestamp=ts,
        timestamp_type=0,
        key=b"k",
        value=value,
        headers=[],
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value or b""),
        serialized_header_size=-1,
    )


@pytest.fixture(scope="module")
def model() -> ServingModel:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int).tolist()
    fitted = fit(algorithm("logistic"), "classification", {}, X, y, ["a", "b"])
    return ServingModel(
        "m",
        7,
        "classification",
        ("a", "b"),
        Scorer(fitted, "sklearn", "classification", ["a", "b"], [0, 1]),
        numeric_schema(["a", "b"]),  # a version made before schemas: every feature required
    )


def _event(event_id: str, **features: float) -> bytes:
    return json.dumps({"event_id": event_id, "features": features}).encode()


def test_good_events_become_predictions_with_the_version(model: ServingModel) -> None:
    records = [_record(0, _event("e0", a=3, b=3)), _record(1, _event("e1", a=-3, b=-3, extra=9))]
    outcome = handle(records, model, received_at=0.0, max_bytes=1 << 20, clock=lambda: 0.004)
    assert outcome.refused == []
    assert [(p.event_id, p.prediction, p.version, p.model) for p in outcome.predictions] == [
        ("e0", 1, 7, "m"),
        ("e1", 0, 7, "m"),
    ]
    assert outcome.predictions[0].score is not None and outcome.predictions[0].score > 0.9
    assert outcome.predictions[0].latency_ms == pytest.approx(4.0)
    assert outcome.predictions[0].ts == 1_000  # absent ts takes the record timestamp


def test_each_bad_record_is_refused_with_its_reason(model: ServingModel) -> None:
    records = [
        _record(0, b"not json"),
        _record(1, _event("e1", a=1)),
        _record(2, None),
        _record(3, b'{"event_id": "e3", "features": {"a": 1, "b": "x"}}'),
        _record(4, _event("e4", a=1, b=2)),
    ]
    outcome = handle(records, model, received_at=0.0, max_bytes=1 << 20)
    assert [p.event_id for p in outcome.predictions] == ["e4"]
    refused = {record.offset: (category, reason) for record, category, reason in outcome.refused}
    assert refused[0][0] == "invalid" and refused[0][1].startswith("$: invalid JSON")
    assert refused[1][0] == "missing_feature"
    assert refused[1][1].startswith("features.b: missing; this version was made without")
    assert refused[2][0] == "invalid" and "tombstone" in refused[2][1]
    assert refused[3] == (
        "bad_feature",
        "features.b: expected a number (numeric feature), got the string 'x'",
    )


A = numeric_schema(["a"])


class _Broken:
    def score(self, X: np.ndarray) -> tuple[list[object], None]:
        raise RuntimeError("boom")


class _NaN:
    def score(self, X: np.ndarray) -> tuple[list[float], None]:
        return [float("nan")] * len(X), None


def test_a_failing_model_dead_letters_the_batch_instead_of_crashing() -> None:
    broken = ServingModel("m", 1, "regression", ("a",), _Broken(), A)  # type: ignore[arg-type]
    outcome = handle([_record(0, _event("e0", a=1))], broken, 0.0, 1 << 20)
    assert outcome.predictions == []
    assert outcome.refused[0][1] == "scoring_failed"
    assert "RuntimeError('boom')" in outcome.refused[0][2]


def test_a_non_finite_prediction_is_refused_not_sent() -> None:
    nan = ServingModel("m", 1, "regression", ("a",), _NaN(), A)  # type: ignore[arg-type]
    outcome = handle([_record(0, _event("e0", a=1))], nan, 0.0, 1 << 20)
    assert outcome.predictions == []
    assert outcome.refused[0][1] == "bad_prediction"


def test_rows_follow_the_model_feature_order() -> None:
    schema = numeric_schema(["a", "b"])
    row = schema.row({"b": 2.0, "a": 1, "c": "unused"})
    assert row == [1, 2.0] and schema.matrix([row]).tolist() == [[1.0, 2.0]]


def test_a_mixed_event_is_scored_and_its_prediction_records_what_the_model_saw() -> None:
    """Numbers, an integer, a category, a boolean, a null, an absent feature and extra fields of
    every type: scored, nothing refused, and the prediction holds the model's features only."""
    schema = Schema(
        [
            FeatureSpec("amount", "numeric"),
            FeatureSpec("items", "numeric"),
            FeatureSpec("country", "categorical"),
            FeatureSpec("is_new", "boolean"),
            FeatureSpec("age", "numeric"),
        ]
    )
    rng = np.random.default_rng(1)
    rows = [
        [
            float(rng.normal()),
            int(rng.integers(1, 5)),
            str(rng.choice(["DE", "FR"])),
            bool(i % 2),
            None,
        ]
        for i in range(200)
    ]
    y = [int(row[0] > 0) for row in rows]
    fitted = fit(algorithm("logistic"), "classification", {}, schema.matrix(rows), y, schema)
    model = ServingModel(
        "m",
        2,
        "classification",
        tuple(schema.names),
        Scorer(fitted, "sklearn", "classification", schema.names, [0, 1]),
        schema,
    )
    event = {
        "event_id": "mixed",
        "features": {
            "amount": 1.5,
            "items": 3,
            "country": "JP",
            "is_new": True,
            "age": None,
            "note": {"deep": [1, {"x": None}]},
            "tags": ["a"],
            "score": "n/a",
        },
    }
    outcome = handle([_record(0, json.dumps(event).encode())], model, 0.0, 1 << 20)
    assert outcome.refused == []
    [prediction] = outcome.predictions
    assert prediction.features == {
        "amount": 1.5,
        "items": 3,
        "country": "JP",
        "is_new": True,
        "age": None,
    }
    assert type(prediction.features["items"]) is int


class _Huge:
    """A model whose first prediction is a string too long for any record."""

    def score(self, X: np.ndarray) -> tuple[list[str], None]:
        return ["x" * 1_000_001] + ["ok"] * (len(X) - 1), None


def test_a_prediction_over_the_record_limit_is_refused_and_the_batch_goes_on() -> None:
    huge = ServingModel("m", 1, "classification", ("a",), _Huge(), A)  # type: ignore[arg-type]
    records = [_record(0, _event("big", a=1)), _record(1, _event("e1", a=2))]
    outcome = handle(records, huge, received_at=0.0, max_bytes=1 << 20)
    assert [p.event_id for p in outcome.predictions] == ["e1"]
    [(record, category, reason)] = outcome.refused
    assert (record.offset, category) == (0, "too_large")
    assert "over the 1,000,000-byte limit" in reason


def test_extra_features_stay_out_of_the_prediction(model: ServingModel) -> None:
    """A wide event whose extra fields once made its prediction too large to write."""
    wide = {f"f{i:05d}": "x" for i in range(60_000)}
    record = _record(
        0, json.dumps({"event_id": "w", "features": {"a": 1, "b": 2, **wide}}).encode()
    )
    outcome = handle([record], model, received_at=0.0, max_bytes=1 << 20)
    assert outcome.refused == [] and outcome.predictions[0].features == {"a": 1, "b": 2}


def test_event_times_are_checked_a_batch_at_a_time_and_each_bad_one_refused_alone(
    model: ServingModel,
) -> None:
    now = 1_700_000_000_000

    def at(event_id: str, ts: int) -> bytes:
        return json.dumps({"event_id": event_id, "ts": ts, "features": {"a": 1, "b": 2}}).encode()

    good = [_record(i, at(f"g{i}", now + i), ts=now) for i in range(5)]
    assert handle(good, model, 0.0, 1 << 20, times=EventTimes()).refused == []
    bad = {
        "year-3000": 32_503_680_000_000,
        "seconds": 1_700_000_000,
        "past-int64": 2**70,
        "a-day-and-more-away": now + 86_400_001,
    }
    records = good + [_record(9, at(name, ts), ts=now) for name, ts in bad.items()]
    outcome = handle(records, model, 0.0, 1 << 20, times=EventTimes())
    assert sorted(p.event_id for p in outcome.predictions) == [f"g{i}" for i in range(5)]
    refused = {json.loads(r.record.value)["event_id"]: r.category for r in outcome.refused}
    assert refused == dict.fromkeys(bad, "bad_time")
