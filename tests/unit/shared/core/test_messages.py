"""Decoding refuses every class of bad input, naming field and reason; good input round-trips."""

from __future__ import annotations

import base64
import hashlib

import pytest

from shared.core.errors import BadMessage
from shared.core.messages import (
    MESSAGE_TYPES,
    DeadLetter,
    DriftAlert,
    Example,
    ExampleBatch,
    FeatureEvent,
    Label,
    ModelEvent,
    Prediction,
    RetrainRequest,
)

GOOD = {
    FeatureEvent: FeatureEvent(event_id="e1", ts=1_700_000_000_000, features={"x": 1.5, "y": -2.0}),
    Label: Label(event_id="e1", ts=1_700_000_000_500, label="fraud"),
    Prediction: Prediction(
        event_id="e1", ts=1, model="churn", version=2, prediction=1, score=0.93, latency_ms=4.2
    ),
    Example: Example(
        event_id="e1", ts=1, model="churn", features={"x": 1.0}, label=0, prediction=1, version=2
    ),
    ExampleBatch: ExampleBatch(
        model="churn",
        examples=[
            Example(event_id=f"e{i}", ts=i, model="churn", features={"x": 1.0}, label=i % 2)
            for i in range(3)
        ],
    ),
    DriftAlert: DriftAlert(
        alert_id="a1",
        ts=1,
        model="churn",
        version=2,
        kind="data_drift",
        detector="psi",
        feature="x",
        statistic=0.31,
        threshold=0.2,
        window=1000,
        severity="warning",
        message="x drifted",
    ),
    RetrainRequest: RetrainRequest(
        request_id="r1", ts=1, model="churn", reason="concept drift", since_ts=0
    ),
    ModelEvent: ModelEvent(ts=1, model="churn", version=3, event="promoted", metrics={"f1": 0.8}),
    DeadLetter: DeadLetter(
        ts=1,
        service="predictor",
        source_topic="driftline.features",
        partition=2,
        offset=41,
        error="features.x: expected a number, got str",
        payload=base64.b64encode(b"\xff").decode(),
    ),
}


def test_every_message_type_has_a_good_example() -> None:
    assert set(GOOD) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", list(GOOD.values()), ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    encoded = message.encode()  # type: ignore[attr-defined]
    assert type(message).decode(encoded) == message  # type: ignore[attr-defined]
    assert encoded.startswith(b'{"v":1,')


def _refusal(data: bytes, message_type: type = FeatureEvent, **kwargs: int) -> BadMessage:
    with pytest.raises(BadMessage) as caught:
        message_type.decode(data, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b'{"event_id": "e", "features": {"x": 1}}\xff', "$", "not UTF-8: byte 39 is invalid"),
        (b'{"event_id": "\xc3\x28", "features": {}}', "$", "not UTF-8: byte 14 is invalid"),
        (b'{"event_id": "e", "features": {"x": 1}', "$", "invalid JSON: Input data was truncated"),
        (b"", "$", "invalid JSON: Input data was truncated"),
        (b"[1, 2]", "$", "expected a JSON object, got array"),
        (b"42", "$", "expected a JSON object, got int"),
        (b'{"features": {"x": 1}}', "event_id", "required field is missing"),
        (b'{"event_id": "e"}', "features", "required field is missing"),
        (b'{"event_id": 7, "features": {}}', "event_id", "expected str, got int"),
        (b'{"event_id": "", "features": {}}', "event_id", "expected str of length >= 1"),
        (b'{"event_id": "e", "features": []}', "features", "expected object, got array"),
        (b'{"event_id": "e", "ts": "now", "features": {}}', "ts", "expected int | null, got str"),
        (b'{"event_id": "e", "ts": -5, "features": {}}', "ts", "expected int >= 0"),
        (
            b'{"event_id": "e", "features": {"x": NaN}}',
            "$",
            "NaN and Infinity are not valid JSON (byte 36)",
        ),
        (
            b'{"event_id": "e", "features": {"x": -Infinity}}',
            "$",
            "NaN and Infinity are not valid JSON (byte 37)",
        ),
        (
            b'{"event_id": "e", "features": {"x": 1e999}}',
            "features.x",
            "must be a finite number (NaN and Infinity are not allowed)",
        ),
        (
            b'{"event_id": "e", "features": {}, "v": 2}',
            "v",
            "unsupported schema version 2; this driftline reads v=1",
        ),
    ],
)
def test_feature_event_refusals_name_field_and_reason(data: bytes, field: str, reason: str) -> None:
    error = _refusal(data)
    assert (error.field, error.reason) == (field, reason)
    assert str(error) == f"{field}: {reason}"


def test_non_finite_label_anywhere_is_refused() -> None:
    error = _refusal(b'{"event_id": "e", "label": 1e400}', Label)
    assert error.field == "label"
    assert "NaN and Infinity" in error.reason


def test_non_finite_metric_in_a_nested_dict_is_named() -> None:
    error = _refusal(
        b'{"ts": 1, "model": "m", "version": 1, "event": "promoted", "metrics": {"f1": 1e999}}',
        ModelEvent,
    )
    assert error.field == "metrics.f1"


def test_size_limit_is_checked_before_parsing() -> None:
    # Not JSON at all: a parser would complain about the syntax; the size check must speak first.
    error = _refusal(b"x" * 2000, max_bytes=1000)
    assert (error.field, error.reason) == ("$", "payload is 2000 bytes, over the 1000 byte limit")


def test_size_limit_admits_a_payload_at_the_limit() -> None:
    data = GOOD[FeatureEvent].encode()
    assert FeatureEvent.decode(data, max_bytes=len(data)) == GOOD[FeatureEvent]


def test_absent_ts_takes_the_record_timestamp() -> None:
    event = FeatureEvent.decode(b'{"event_id": "e", "features": {}}', default_ts=1234)
    assert event.ts == 1234


def test_present_ts_wins_over_the_record_timestamp() -> None:
    event = FeatureEvent.decode(b'{"event_id": "e", "ts": 99, "features": {}}', default_ts=1234)
    assert event.ts == 99


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = FeatureEvent.decode(b'{"event_id": "e", "features": {}, "source": "web"}')
    assert event == FeatureEvent(event_id="e", features={})


def test_labels_keep_their_json_type() -> None:
    assert Label.decode(b'{"event_id": "e", "label": 1}').label == 1
    assert Label.decode(b'{"event_id": "e", "label": true}').label is True
    assert Label.decode(b'{"event_id": "e", "label": 0.25}').label == 0.25
    assert Label.decode(b'{"event_id": "e", "label": "spam"}').label == "spam"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_writing_a_message_with_a_non_finite_number_fails(bad: float) -> None:
    with pytest.raises(BadMessage, match="score: must be a finite number"):
        Prediction(
            event_id="e", ts=1, model="m", version=1, prediction=1, score=bad, latency_ms=1.0
        ).encode()
    with pytest.raises(BadMessage, match=r"features\.x: must be a finite number"):
        FeatureEvent(event_id="e", features={"x": bad}).encode()
    with pytest.raises(BadMessage, match="prediction: must be a finite number"):
        Label(event_id="e", label=1).encode()  # fine
        Prediction(
            event_id="e", ts=1, model="m", version=1, prediction=bad, latency_ms=1.0
        ).encode()


def test_alert_kind_is_checked() -> None:
    data = GOOD[DriftAlert].encode().replace(b'"data_drift"', b'"weather"')
    assert _refusal(data, DriftAlert).field == "kind"


def test_dead_letter_keeps_the_original_bytes() -> None:
    assert GOOD[DeadLetter].original == b"\xff"


DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize(
    ("data", "cls", "field", "reason"),
    [
        (b'{"event_id": "e", "features": {"a": ' + DEEP + b"}}", FeatureEvent, "$", "nested"),
        (b'{"event_id": "e", "features": {}, "x": ' + DEEP + b"}", FeatureEvent, "$", "nested"),
        (b'{"event_id": "e", "label": ' + DEEP + b"}", Label, "label", "got array"),
        (b'{"event_id": "e", "label": 1, "x": {"y": ' + DEEP + b"}}", Label, "$", "nested"),
        (b'{"event_id": "e", "label": 1' + b"0" * 400 + b"}", Label, "label", "expected int"),
        (b'{"event_id": "e", "label": -' + b"9" * 30 + b"}", Label, "label", "expected int"),
    ],
)
def test_hostile_json_is_a_bad_message_not_a_crash(
    data: bytes, cls: type[FeatureEvent] | type[Label], field: str, reason: str
) -> None:
    refusal = _refusal(data, cls)
    assert refusal.field.startswith(field) and reason in refusal.reason, refusal


def test_the_largest_int64_is_still_a_label() -> None:
    assert Label.decode(b'{"event_id": "e", "label": 9223372036854775807}').label == 2**63 - 1


def test_a_dead_letter_always_fits_a_record() -> None:
    original = bytes(range(256)) * 4_096  # 1 MiB
    letter = DeadLetter.of(
        ts=1,
        service="monitor",
        source_topic="t",
        partition=0,
        offset=0,
        error="e" * 50_000,
        original=original,
    )
    assert len(letter.encode()) < 400_000
    assert letter.original == original[: DeadLetter.PAYLOAD_MAX]
    assert letter.payload_bytes == len(original)
    assert letter.payload_sha256 == hashlib.sha256(original).hexdigest()
    assert DeadLetter.decode(letter.encode()) == letter
    small = DeadLetter.of(
        ts=1, service="m", source_topic="t", partition=0, offset=0, error="e", original=b"x"
    )
    assert (small.original, small.payload_bytes, small.payload_sha256) == (b"x", None, None)
