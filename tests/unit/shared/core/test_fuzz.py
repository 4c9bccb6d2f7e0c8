"""Every decoder, fed random and mutated records: it returns a message or raises BadMessage with a
field and a reason, never anything else (an uncaught error is a crash loop in a service)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.errors import BadMessage
from shared.core.messages import FeatureEvent, Label, Prediction, RetrainRequest, decode_examples
from tests.harness.fuzz import VALID, hostile

DECODERS = [
    FeatureEvent.decode,
    Label.decode,
    Prediction.decode,
    RetrainRequest.decode,
    decode_examples,
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["event_id", "ts", "features", "label", "model", "version", "a", "z"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def _survives(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except BadMessage as exc:
            assert exc.field and exc.reason, (data[:200], exc)


@settings(max_examples=700, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_bad_input_never_a_crash(data: bytes) -> None:
    _survives(data)


@settings(max_examples=700, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_values)
def test_random_json_is_bad_input_never_a_crash(value: object) -> None:
    import json  # noqa: PLC0415

    _survives(json.dumps(value, allow_nan=True).encode())


@pytest.mark.parametrize("seed", range(4))
def test_thousands_of_mutated_records_are_bad_input_never_a_crash(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1_500):
        _survives(hostile(rng))


def test_the_valid_records_the_mutations_start_from_decode() -> None:
    assert FeatureEvent.decode(VALID[0]).event_id == "v1"
    assert Label.decode(VALID[2]).label == 1
