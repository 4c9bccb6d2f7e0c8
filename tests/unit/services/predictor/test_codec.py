"""The predictor's fast codec against the general path it shortcuts.

The fast decoder may only take an event the general path (``FeatureEvent.decode`` and
``Schema.row``) takes, and must take it to the same row; the encoder must write the bytes
``Prediction.encode`` writes. Both are checked on generated events of every JSON shape a
producer may send, hostile ones included.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.predictor.codec import MISSES_BEFORE_REST, REST, PredictionEncoder, RowDecoder
from shared.core.errors import BadMessage
from shared.core.messages import FeatureEvent, Prediction
from shared.core.schema import FeatureSpec, Schema

SCHEMAS = {
    "mixed, imputing": Schema(
        [
            FeatureSpec("amount", "numeric"),
            FeatureSpec("country", "categorical"),
            FeatureSpec("is_new", "boolean"),
            FeatureSpec("odd name-with.dots", "numeric"),
        ]
    ),
    "numeric, every feature required": Schema(
        [FeatureSpec("a", "numeric"), FeatureSpec("b", "numeric")], missing=False
    ),
}

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.sampled_from(["3.5", "true", "FALSE", "1e400", "nan", "", "DE"]),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_number = st.integers(min_value=-(2**63) - 1, max_value=2**63) | st.floats(
    allow_nan=False, allow_infinity=False
)
_names = st.sampled_from(["amount", "country", "is_new", "odd name-with.dots", "a", "b", "x"])
_plain = st.one_of(  # what a producer writing in the schema's own terms sends, and its edges
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63) - 1, max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=258),
)


@st.composite
def _events(draw: Any) -> bytes:
    """A feature event as a producer may write it, or something near one."""
    features = draw(
        st.dictionaries(_names, _json_values, max_size=6)
        | st.dictionaries(_names, _plain, max_size=4)
        | st.fixed_dictionaries({"a": _number, "b": _number})
        | st.fixed_dictionaries(
            {
                "amount": _number | st.none(),
                "country": st.text(max_size=258) | st.none(),
                "is_new": st.booleans() | st.none(),
                "odd name-with.dots": _number,
            }
        )
    )
    record: dict[str, Any] = {"features": features}
    if draw(st.integers(0, 3)) == 0:  # a broken envelope, a quarter of the time
        record["event_id"] = draw(st.sampled_from(["", "x" * 300, 7, None]))
        record["ts"] = draw(st.sampled_from([-5, None, "soon", 2**70, 1.5]))
        record["v"] = draw(st.sampled_from([1, 2, "1"]))
    else:
        record["event_id"] = "e1"
        if draw(st.booleans()):
            record["ts"] = 1_700_000_000_000
    if draw(st.booleans()):
        record["extra"] = draw(_json_values)
    return json.dumps(record).encode()


def _general(schema: Schema, data: bytes, default_ts: int) -> tuple[str, int, list[Any]] | None:
    try:
        event = FeatureEvent.decode(data, default_ts=default_ts)
        return event.event_id, event.ts or 0, schema.row(event.features)
    except BadMessage:
        return None


@pytest.mark.parametrize("kind", SCHEMAS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_events())
def test_the_fast_decoder_takes_only_what_the_general_path_takes_to_the_same_row(
    kind: str, data: bytes
) -> None:
    schema = SCHEMAS[kind]
    fast = RowDecoder(schema).decode(data, 1_000)
    event(f"fast path taken: {fast is not None}")
    if fast is None:
        return  # the general path decides, as before
    assert fast == _general(schema, data, 1_000)
    assert [type(value) for value in fast[2]] == [
        type(value)
        for value in _general(schema, data, 1_000)[2]  # type: ignore[index]
    ]


def test_the_fast_decoder_takes_the_common_event_and_leaves_the_others() -> None:
    decoder = RowDecoder(SCHEMAS["mixed, imputing"])
    common = {"amount": 12.5, "country": "DE", "is_new": False, "odd name-with.dots": 3}
    data = json.dumps({"event_id": "e", "features": common}).encode()
    assert decoder.decode(data, 9) == ("e", 9, [12.5, "DE", False, 3])
    gaps = json.dumps({"event_id": "e", "ts": 1_700_000_000_000, "features": {}}).encode()
    assert decoder.decode(gaps, 9) == ("e", 1_700_000_000_000, [None, None, None, None])
    for other in (
        {**common, "amount": "12.5"},  # another producer's spelling: the general path's
        {**common, "unknown": 1},  # an extra feature: the feature watch must see it
        {**common, "amount": 2**64},  # out of range: refused by the general path
        {**common, "country": "x" * 257},
    ):
        data = json.dumps({"event_id": "e", "features": other}).encode()
        assert decoder.decode(data, 9) is None
    required = RowDecoder(SCHEMAS["numeric, every feature required"])
    assert required.decode(b'{"event_id": "e", "features": {"a": 1}}', 9) is None


_outputs = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    predictions=st.lists(_outputs, min_size=1, max_size=8),
    scored=st.booleans(),
    data=st.data(),
)
def test_the_encoder_writes_what_prediction_encode_writes_and_refuses_non_finite_output(
    predictions: list[Any], scored: bool, data: Any
) -> None:
    names = ("amount", "country")
    count = len(predictions)
    scores = data.draw(st.lists(st.floats(), min_size=count, max_size=count)) if scored else None
    rows = [[float(i), f"c{i}"] for i in range(count)]
    ids = [f"e{i}" for i in range(count)]
    written = PredictionEncoder("m", 3, names).encode(
        ids, [1_000] * count, predictions, scores, 2.5, rows
    )
    for i, out in enumerate(written):
        score = None if scores is None else scores[i]
        expected = Prediction(
            event_id=ids[i],
            ts=1_000,
            model="m",
            version=3,
            prediction=predictions[i],
            score=score,
            latency_ms=2.5,
            features=dict(zip(names, rows[i], strict=True)),
        )
        finite = all(
            not (isinstance(v, float) and not math.isfinite(v)) for v in (predictions[i], score)
        )
        if finite:
            assert out == expected.encode()
            assert Prediction.decode(out) == expected
        else:
            assert isinstance(out, BadMessage) and "finite" in str(out)


def test_outputs_of_both_infinities_in_one_batch_are_each_refused() -> None:
    """``math.fsum`` raises on ``inf + -inf`` (found by the test above): still one refusal each."""
    written = PredictionEncoder("m", 1, ("a",)).encode(
        ["e0", "e1", "e2"], [1, 1, 1], [1, 0, 1], [0.5, math.inf, -math.inf], 0.0, [[1.0]] * 3
    )
    assert isinstance(written[0], bytes)
    assert all(isinstance(out, BadMessage) and "finite" in str(out) for out in written[1:])


def test_an_output_that_is_not_json_is_refused_alone() -> None:
    written = PredictionEncoder("m", 1, ("a",)).encode(
        ["e0", "e1"], [1, 1], [1, object()], None, 0.0, [[1.0], [2.0]]
    )
    assert isinstance(written[0], bytes) and isinstance(written[1], BadMessage)


def test_a_stream_of_other_terms_rests_the_fast_way_and_tries_it_again() -> None:
    """Numbers written as strings, event after event: the fast way stops being tried for a
    while (each failed try cost a third more than the general path), then is tried again."""
    decoder = RowDecoder(SCHEMAS["numeric, every feature required"])
    strings = b'{"event_id": "e", "features": {"a": "1", "b": "2"}}'
    plain = b'{"event_id": "e", "features": {"a": 1, "b": 2}}'
    for _ in range(MISSES_BEFORE_REST):
        assert decoder.decode(strings, 1) is None
    assert decoder.decode(plain, 1) is None  # resting: the general path takes it, as well
    for _ in range(REST - 1):
        decoder.decode(strings, 1)
    assert decoder.decode(plain, 1) == ("e", 1, [1, 2])  # tried again
    for _ in range(MISSES_BEFORE_REST - 1):
        assert decoder.decode(strings, 1) is None
    assert decoder.decode(plain, 1) == ("e", 1, [1, 2])  # a hit resets the count
