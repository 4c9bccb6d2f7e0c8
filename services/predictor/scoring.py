"""The predictor's data plane: a batch of feature-event records in, predictions and refusals out.

:func:`handle` decodes and validates each record, puts the events in the model's column order,
scores them in one call and encodes each prediction, with no I/O: the loop around it
(:mod:`services.predictor.service`) only polls, delivers and commits. A record that cannot be
scored is a :class:`Refusal` with its reason, for the dead-letter topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from services.predictor.codec import PredictionEncoder, RowDecoder
from shared.core.errors import BadMessage
from shared.core.messages import OUTPUT_MAX_BYTES, EventTimes, FeatureEvent, Prediction
from shared.core.schema import Schema, Value
from shared.io.kafka import record_value
from shared.io.transport import Record
from shared.models.serving import ServingModel

RefusalCategory = Literal[
    "invalid",
    "bad_time",
    "missing_feature",
    "bad_feature",
    "scoring_failed",
    "bad_prediction",
    "too_large",
]
"""Why a record could not be scored, as the ``reason`` label of the dead-letter metric."""


_IN_SCHEMA: Mapping[str, Any] = MappingProxyType({})


class Refusal(NamedTuple):
    """A record that could not be scored, and why."""

    record: Record
    category: RefusalCategory
    reason: str
    """The full reason, which its dead letter carries."""


@dataclass
class ScoredBatch:
    """What one batch produced: predictions to send and records to dead-letter, with reasons."""

    keys: list[bytes] = field(default_factory=list)
    """Each prediction's record key (its event id)."""
    encoded: list[bytes] = field(default_factory=list)
    """Each prediction's JSON, in the same order."""
    refused: list[Refusal] = field(default_factory=list)
    seen: list[Mapping[str, Any]] = field(default_factory=list)
    """The features of every event decoded (extra ones too), for the predictor's feature watch;
    an empty mapping for an event the fast decoder took (it had the schema's features only)."""

    @property
    def predictions(self) -> list[Prediction]:
        """The predictions, decoded from their records (for tests and tools: the loop sends the
        bytes)."""
        return [Prediction.decode(value) for value in self.encoded]


@dataclass
class _Accepted:
    """The events of a batch that passed their checks, as parallel lists."""

    ids: list[str] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    rows: list[list[Value]] = field(default_factory=list)
    sources: list[Record] = field(default_factory=list)


def handle(
    records: list[Record],
    model: ServingModel,
    received_at: float,
    max_bytes: int,
    clock: Callable[[], float] = time.time,
    times: EventTimes | None = None,
    decoder: RowDecoder | None = None,
    encoder: PredictionEncoder | None = None,
) -> ScoredBatch:
    """Score ``records`` with ``model``: the predictor's logic, free of I/O. With ``times``, an
    event whose ``ts`` is out of its bounds is refused (``bad_time``). ``decoder`` and
    ``encoder`` are the caller's for the model (made here when absent or for another one):
    ``decoder`` takes the events already in the schema's terms the fast way."""
    outcome = ScoredBatch()
    if decoder is None or decoder.schema != model.schema:
        decoder = RowDecoder(model.schema)
    accepted = _accept(records, decoder, max_bytes, outcome)
    if times is not None and not times.all_within(accepted.stamps, _stamps(accepted.sources)):
        accepted = _in_time(accepted, times, outcome)
    if not accepted.rows:
        return outcome
    try:
        predictions, scores = model.score(model.schema.matrix(accepted.rows))
    except Exception as exc:
        reason = f"scoring with {model.name} v{model.version} failed: {exc!r}"
        outcome.refused.extend(Refusal(r, "scoring_failed", reason) for r in accepted.sources)
        return outcome
    latency_ms = max(0.0, (clock() - received_at) * 1000)
    if encoder is None or encoder.key != (model.name, model.version, model.features):
        encoder = PredictionEncoder(model.name, model.version, model.features)
    encoded = encoder.encode(
        accepted.ids, accepted.stamps, predictions, scores, latency_ms, accepted.rows
    )
    for event_id, source, written in zip(accepted.ids, accepted.sources, encoded, strict=True):
        if isinstance(written, BadMessage):
            reason = f"{model.name} v{model.version} returned an unusable prediction: {written}"
            outcome.refused.append(Refusal(source, "bad_prediction", reason))
        elif len(written) > OUTPUT_MAX_BYTES:
            reason = (
                f"its prediction would be {len(written):,} bytes (the model's "
                f"{len(model.features):,} features included), over the {OUTPUT_MAX_BYTES:,}-byte "
                "limit of a record driftline writes"
            )
            outcome.refused.append(Refusal(source, "too_large", reason))
        else:
            outcome.keys.append(event_id.encode())
            outcome.encoded.append(written)
    return outcome


def _accept(
    records: list[Record],
    decoder: RowDecoder,
    max_bytes: int,
    outcome: ScoredBatch,
) -> _Accepted:
    """Decode and check each record: the fast way where it can, else the general way, which
    refuses it with the reason or takes it in another producer's spelling."""
    accepted = _Accepted()
    fast = decoder.decode
    seen = outcome.seen
    for record in records:
        value = record.value
        decoded = (
            fast(value, record.timestamp) if value is not None and len(value) <= max_bytes else None
        )
        if decoded is not None:
            seen.append(_IN_SCHEMA)
        else:
            decoded = _general(record, decoder.schema, max_bytes, outcome)
            if decoded is None:
                continue
        event_id, ts, row = decoded
        accepted.ids.append(event_id)
        accepted.stamps.append(ts)
        accepted.rows.append(row)
        accepted.sources.append(record)
    return accepted


def _stamps(records: list[Record]) -> list[int]:
    return [record.timestamp for record in records]


def _in_time(accepted: _Accepted, times: EventTimes, outcome: ScoredBatch) -> _Accepted:
    """The accepted events whose ``ts`` is within ``times``; the others refused (``bad_time``)."""
    kept = _Accepted()
    for event_id, ts, row, record in zip(
        accepted.ids, accepted.stamps, accepted.rows, accepted.sources, strict=True
    ):
        try:
            times(ts, record.timestamp)
        except BadMessage as exc:
            outcome.refused.append(Refusal(record, "bad_time", str(exc)))
            continue
        kept.ids.append(event_id)
        kept.stamps.append(ts)
        kept.rows.append(row)
        kept.sources.append(record)
    return kept


def _general(
    record: Record, schema: Schema, max_bytes: int, outcome: ScoredBatch
) -> tuple[str, int, list[Value]] | None:
    """``(event_id, ts, row)`` of a record decoded as any :class:`FeatureEvent` and checked
    against ``schema`` in Python; None once it is refused (in ``outcome``)."""
    try:
        event = FeatureEvent.decode(
            record_value(record, "a feature event"),
            max_bytes=max_bytes,
            default_ts=record.timestamp,
        )
    except BadMessage as exc:
        outcome.refused.append(Refusal(record, "invalid", str(exc)))
        return None
    outcome.seen.append(event.features)
    try:
        row = schema.row(event.features)
    except BadMessage as exc:
        reason = str(exc)
        category: RefusalCategory = "missing_feature" if ": missing;" in reason else "bad_feature"
        outcome.refused.append(Refusal(record, category, reason))
        return None
    return event.event_id, event.ts or 0, row
