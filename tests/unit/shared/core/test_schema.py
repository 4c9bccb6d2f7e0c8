"""A version's schema: which values each kind of feature takes, and what it refuses, by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.core.errors import BadMessage
from shared.core.messages import FeatureEvent, Prediction
from shared.core.schema import (
    MAX_CATEGORY,
    FeatureSpec,
    Schema,
    infer_kind,
    infer_schema,
    numeric_schema,
)

SCHEMA = Schema(
    [
        FeatureSpec("amount", "numeric"),
        FeatureSpec("items", "numeric"),
        FeatureSpec("country", "categorical"),
        FeatureSpec("is_new", "boolean"),
    ]
)


def _row(features: dict[str, Any]) -> list[Any]:
    return SCHEMA.row(features)


def test_every_kind_of_value_a_real_stream_carries_is_taken() -> None:
    event = FeatureEvent.decode(
        b'{"event_id": "e", "features": {"amount": 12.5, "items": 3, "country": "DE", '
        b'"is_new": true, "note": {"free": ["text", 1]}, "tags": [1, 2], "flag": "yes"}}'
    )
    row = _row(event.features)
    assert row == [12.5, 3, "DE", True]
    assert type(row[1]) is int  # integers stay integers


@pytest.mark.parametrize(
    ("features", "row"),
    [
        ({}, [None, None, None, None]),  # absent is missing, not an error
        ({"amount": None, "country": None}, [None, None, None, None]),
        ({"amount": "12.5", "items": "3"}, [12.5, 3, None, None]),
        ({"country": 276, "is_new": 1}, [None, None, "276", True]),  # an integer code
        ({"country": True, "is_new": "FALSE"}, [None, None, "true", False]),
        ({"amount": True}, [1, None, None, None]),
    ],
)
def test_spellings_other_producers_write_are_taken(
    features: dict[str, Any], row: list[Any]
) -> None:
    assert _row(features) == row


@pytest.mark.parametrize(
    ("features", "field", "reason"),
    [
        ({"amount": "twelve"}, "features.amount", "expected a number"),
        ({"amount": "nan"}, "features.amount", "must be a finite number"),
        ({"amount": [1]}, "features.amount", "got an array"),
        ({"amount": {"v": 1}}, "features.amount", "got an object"),
        ({"items": 10**30}, "features.items", "integer out of range"),
        ({"country": 1.5}, "features.country", "expected a category"),
        ({"country": ["DE"]}, "features.country", "got an array"),
        ({"country": "x" * (MAX_CATEGORY + 1)}, "features.country", "over the 256 allowed"),
        ({"is_new": "maybe"}, "features.is_new", "expected true or false"),
        ({"is_new": 2}, "features.is_new", "expected true or false"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_the_feature(
    features: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(BadMessage) as refused:
        _row(features)
    assert refused.value.field == field and reason in refused.value.reason, refused.value


def test_a_version_without_missing_value_handling_refuses_a_gap_with_the_fix() -> None:
    legacy = numeric_schema(["a", "b"])
    assert legacy.row({"a": 1, "b": 2.0, "c": "x"}) == [1, 2.0]
    with pytest.raises(BadMessage, match=r"features\.b: missing; .*retrain it"):
        legacy.row({"a": 1})


def test_rows_become_floats_or_objects_as_a_pipeline_takes_them() -> None:
    numbers = numeric_schema(["a", "b"], missing=True).matrix([[1, None], [True, 2.5]])
    assert numbers.dtype == float
    assert np.isnan(numbers[0, 1]) and numbers[1].tolist() == [1.0, 2.5]
    mixed = SCHEMA.matrix([[1, None, "DE", True], [None, 2, None, None]])
    assert mixed.dtype == object
    assert mixed[0, 0] == 1.0 and np.isnan(mixed[0, 1]) and mixed[0, 2] == "DE"
    assert mixed[0, 3] == 1.0
    assert mixed[1, 2] is None and np.isnan(mixed[1, 0]) and np.isnan(mixed[1, 3])


def test_a_prediction_records_checked_values_of_every_kind() -> None:
    values = dict(zip(SCHEMA.names, _row({"amount": 1, "country": "DE"}), strict=True))
    prediction = Prediction(
        event_id="e", ts=1, model="m", version=1, prediction=0, latency_ms=0.0, features=values
    )
    assert Prediction.decode(prediction.encode()).features == values


def test_kinds_are_inferred_from_values_and_can_be_forced() -> None:
    columns = {
        "n": ["1", "2.5", "", "NaN"],
        "code": ["10", "20", "10", ""],
        "city": ["Berlin", "", "Paris", "Berlin"],
        "flag": ["true", "False", "", "TRUE"],
        "json_flag": [True, None, False, True],
    }
    assert infer_schema(columns).kinds == {
        "n": "numeric",
        "code": "numeric",
        "city": "categorical",
        "flag": "boolean",
        "json_flag": "boolean",
    }
    forced = infer_schema(columns, categorical=["code"], numeric=["flag"])
    assert forced.kinds["code"] == "categorical" and forced.kinds["flag"] == "numeric"
    assert infer_kind([None, ""]) == "numeric"  # nothing seen: a number until said otherwise


def test_an_override_naming_no_column_says_which_there_are() -> None:
    from shared.core.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match=r"--categorical/--numeric name cuntry.*country"):
        infer_schema({"country": ["DE"]}, categorical=["cuntry"])
