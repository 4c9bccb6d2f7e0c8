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
from typing import Any, Literal, NamedTuple

import msgspec

from shared.core.errors import BadMessage
from shared.core.messages import OUTPUT_MAX_BYTES, EventTimes, FeatureEvent, Prediction
from shared.io.kafka import record_value
from shared.io.transport import Record
from shared.models.serving import ServingModel, to_rows

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


class Refusal(NamedTuple):
    """A record that could not be scored, and why."""

    record: Record
    category: RefusalCategory
    reason: str
    """The full reason, which its dead letter carries."""


@dataclass
class ScoredBatch:
    """What one batch produced: predictions to send and records to dead-letter, with reasons."""

    predictions: list[Prediction] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    """Each prediction's JSON, in the same order."""
    refused: list[Refusal] = field(default_factory=list)
    seen: list[Mapping[str, Any]] = field(default_factory=list)
    """The features of every event decoded (extra ones too), for the predictor's feature watch."""


def handle(
    records: list[Record],
    model: ServingModel,
    received_at: float,
    max_bytes: int,
    clock: Callable[[], float] = time.time,
    times: EventTimes | None = None,
) -> ScoredBatch:
    """Score ``records`` with ``model``: the predictor's logic, free of I/O. With ``times``, an
    event whose ``ts`` is out of its bounds is refused (``bad_time``)."""
    outcome = ScoredBatch()
    events: list[FeatureEvent] = []
    sources: list[Record] = []
    for record in records:
        try:
            value = record_value(record, "a feature event")
            event = FeatureEvent.decode(value, max_bytes=max_bytes, default_ts=record.timestamp)
        except BadMessage as exc:
            outcome.refused.append(Refusal(record, "invalid", str(exc)))
            continue
        if times is not None and event.ts is not None:
            try:
                times(event.ts, record.timestamp)
            except BadMessage as exc:
                outcome.refused.append(Refusal(record, "bad_time", str(exc)))
                continue
        events.append(event)
        sources.append(record)
        outcome.seen.append(event.features)
    X, kept, bad, rows = to_rows(events, model.schema)
    for index, reason in bad:
        category: RefusalCategory = "missing_feature" if ": missing;" in reason else "bad_feature"
        outcome.refused.append(Refusal(sources[index], category, reason))
    if not kept:
        return outcome
    try:
        predictions, scores = model.score(X)
    except Exception as exc:
        reason = f"scoring with {model.name} v{model.version} failed: {exc!r}"
        outcome.refused.extend(Refusal(sources[i], "scoring_failed", reason) for i in kept)
        return outcome
    latency_ms = max(0.0, (clock() - received_at) * 1000)
    names = model.features
    for position, index in enumerate(kept):
        event = events[index]
        try:
            prediction = Prediction(
                event_id=event.event_id,
                ts=event.ts or 0,
                model=model.name,
                version=model.version,
                prediction=predictions[position],
                score=None if scores is None else scores[position],
                latency_ms=latency_ms,
                features=dict(zip(names, rows[position], strict=True)),
            )
            encoded = prediction.encode()
        except (BadMessage, TypeError, ValueError, msgspec.EncodeError) as exc:
            reason = f"{model.name} v{model.version} returned an unusable prediction: {exc}"
            outcome.refused.append(Refusal(sources[index], "bad_prediction", reason))
            continue
        if len(encoded) > OUTPUT_MAX_BYTES:
            reason = (
                f"its prediction would be {len(encoded):,} bytes (the model's {len(names):,} "
                f"features included), over the {OUTPUT_MAX_BYTES:,}-byte limit of a record "
                "driftline writes"
            )
            outcome.refused.append(Refusal(sources[index], "too_large", reason))
            continue
        outcome.predictions.append(prediction)
        outcome.encoded.append(encoded)
    return outcome
