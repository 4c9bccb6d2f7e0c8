"""The predictor's codec: a feature event straight into the row its model reads, and a batch of
predictions into their records, each the way that costs the least Python per event.

**Decoding.**
The general path decodes a :class:`~shared.core.messages.FeatureEvent` (features as a dict of any
JSON values) and checks each value against the schema in Python (:meth:`Schema.row`), which takes
every spelling other producers write and says what is wrong with a value. Most events of a
stream are already in the schema's own terms, and for those :class:`RowDecoder` lets msgspec do
the whole check in C: its type for an event of one schema has a field per feature, typed as the
schema's kind (a 64-bit integer or a number; a boolean; a string of at most
:data:`~shared.core.schema.MAX_CATEGORY` characters; or null/absent where the version imputes),
and no other feature. Anything else (a number written as a string, an extra feature, a bad
value, a malformed record) fails that type and goes the general way, which accepts or refuses it
exactly as before: the fast path can only take what the general path would take, and takes it to
the same row.

**Encoding.** :class:`PredictionEncoder` writes the records :class:`Prediction` encodes (the same
bytes: same fields, same order), from a type for one model version whose ``features`` are a
struct of its features, filled positionally from each row: no dict and no keyword call per
event, and one encoder call for the whole batch.

>>> from shared.core.schema import FeatureSpec, Schema
>>> decoder = RowDecoder(Schema([FeatureSpec("age", "numeric"), FeatureSpec("c", "categorical")]))
>>> decoder.decode(b'{"event_id": "e1", "ts": 1700000000000, "features": {"age": 41, "c": "DE"}}', 7)
('e1', 1700000000000, [41, 'DE'])
>>> decoder.decode(b'{"event_id": "e1", "features": {"age": "41", "c": "DE"}}', 7) is None
True
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec

from shared.core.errors import BadMessage
from shared.core.messages import SCHEMA_VERSION, EventId, Int64, Millis, Prediction
from shared.core.schema import MAX_CATEGORY, FeatureKind, Schema, Value

_Category = Annotated[str, msgspec.Meta(max_length=MAX_CATEGORY)]
MISSES_BEFORE_REST = 64
REST = 4_096
_KINDS: dict[FeatureKind, Any] = {
    "numeric": Int64 | float,
    "boolean": bool,
    "categorical": _Category,
}


class RowDecoder:
    """Decodes feature events of one schema whose features are all in its own terms."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
        for index, spec in enumerate(schema.features):
            kind = _KINDS[spec.kind]
            fields.append(
                (f"f{index}", kind | None, None) if schema.missing else (f"f{index}", kind)
            )
        features = msgspec.defstruct(
            "Features",
            fields,
            rename={f"f{index}": spec.name for index, spec in enumerate(schema.features)},
            forbid_unknown_fields=True,
            array_like=False,
        )
        event = msgspec.defstruct(
            "Event",
            [
                ("event_id", EventId),
                ("features", features),
                ("ts", Millis | None, None),
                ("v", Literal[SCHEMA_VERSION], SCHEMA_VERSION),
            ],
        )
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(event)
        self._astuple = msgspec.structs.astuple
        self._misses = 0
        """Events in a row that the fast way did not take."""
        self._resting = 0
        """Events left to send straight the general way."""

    def decode(self, data: bytes, default_ts: int) -> tuple[str, int, list[Value]] | None:
        """``(event_id, ts, row)`` of an event in the schema's own terms, ``default_ts`` where
        it has no ``ts``; None for anything else (the general path decides about it).

        A producer that writes every event in other terms (numbers as strings) would pay a
        failed fast decode per event, a third more than the general path alone: after
        :data:`MISSES_BEFORE_REST` misses in a row the next :data:`REST` events go the general
        way at once, then the fast way is tried again.
        """
        if self._resting:
            self._resting -= 1
            return None
        try:
            event = self._decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            self._misses += 1
            if self._misses >= MISSES_BEFORE_REST:
                self._misses, self._resting = 0, REST
            return None
        self._misses = 0
        ts = event.ts
        return event.event_id, default_ts if ts is None else ts, list(self._astuple(event.features))


class PredictionEncoder:
    """Encodes predictions of one model version; ``encode`` returns each record's bytes, or the
    reason it cannot be written (a model output that is not a finite number or not JSON)."""

    def __init__(self, model: str, version: int, features: tuple[str, ...]) -> None:
        self.key = (model, version, features)
        names = [f"f{index}" for index in range(len(features))]
        self._features = msgspec.defstruct(
            "Features",
            [(name, Any) for name in names],
            rename=dict(zip(names, features, strict=True)),
        )
        fields: list[tuple[str, Any]] = [(f.name, Any) for f in msgspec.structs.fields(Prediction)]
        fields[-1] = ("features", self._features)
        self._prediction = msgspec.defstruct("Prediction", fields)
        self._model, self._version = model, version
        self._encoder = msgspec.json.Encoder()

    def encode(
        self,
        ids: list[str],
        stamps: list[int],
        predictions: list[Any],
        scores: list[float] | None,
        latency_ms: float,
        rows: list[list[Value]],
    ) -> list[bytes | BadMessage]:
        features, prediction = self._features, self._prediction
        model, version, v = self._model, self._version, SCHEMA_VERSION
        if scores is None:
            scores = [None] * len(ids)  # type: ignore[list-item]
        items = [
            prediction(v, event_id, ts, model, version, value, score, latency_ms, features(*row))
            for event_id, ts, value, score, row in zip(
                ids, stamps, predictions, scores, rows, strict=True
            )
        ]
        if _finite(predictions) and _finite(scores):
            try:
                return self._encoder.encode_lines(items).split(b"\n")[:-1]  # type: ignore[return-value]
            except (TypeError, ValueError, msgspec.EncodeError):
                pass  # some output is not JSON: find which, one by one
        return [self._one(item) for item in items]

    def _one(self, item: Any) -> bytes | BadMessage:
        for name in ("prediction", "score"):
            value = getattr(item, name)
            if type(value) is float and not math.isfinite(value):
                return BadMessage(name, f"must be a finite number, got {value}")
        try:
            return self._encoder.encode(item)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            return BadMessage("prediction", f"cannot be written as JSON: {exc}")


def _finite(values: list[Any]) -> bool:
    """Whether no value is a NaN or an infinity (one C-level sum, for a list of numbers)."""
    try:
        return math.isfinite(math.fsum(values))
    except (TypeError, OverflowError, ValueError):  # ValueError: fsum of inf and -inf
        return all(not (type(value) is float and not math.isfinite(value)) for value in values)
