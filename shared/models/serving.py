"""A model ready to serve: verified, checked and warmed up from its stored record and artifact.

:func:`load_serving_model` does everything that can fail or take time (sha256, signature,
deserialize, feature check, warm-up batch), so that the predictor's loop only swaps a reference;
the caller fetches the record and the artifact (``shared.registry.loading`` from the registry).
:func:`to_rows` turns feature events into the model's column order, setting aside events that lack
a feature the model needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.core.errors import ArtifactRejected
from shared.core.kinds import Task
from shared.core.messages import FeatureEvent
from shared.models.algorithms import Family, Scorer
from shared.models.artifacts import load_verified
from shared.models.signing import Verifier
from shared.models.version import ModelVersion

WARM_UP_ROWS = 32


@dataclass(frozen=True)
class ServingModel:
    """One verified, warmed-up model version and how to score with it."""

    name: str
    version: int
    task: Task
    features: tuple[str, ...]
    scorer: Scorer

    def score(self, X: NDArray[np.float64]) -> tuple[list[Any], list[float] | None]:
        return self.scorer.score(X)


def load_serving_model(record: ModelVersion, artifact: bytes, verifier: Verifier) -> ServingModel:
    """Verify, deserialize, check and warm up the version ``record`` describes.

    Raises :class:`ArtifactRejected` when the artifact does not verify or does not behave.
    """
    model, version = record.model, record.version
    if not record.features:
        raise ArtifactRejected(f"{model} v{version} has an empty feature list")
    fitted = load_verified(artifact, record, verifier)
    family: Family = "sklearn" if record.format == "skops" else "river"
    scorer = Scorer(fitted, family, record.task, record.features, record.classes)
    serving = ServingModel(model, version, record.task, tuple(record.features), scorer)
    warm_up(serving, record)
    return serving


def warm_up(serving: ServingModel, record: ModelVersion) -> None:
    """Score a batch of reference rows: a model that fails or returns the wrong shape is refused."""
    X = warm_up_rows(record)
    try:
        predictions, scores = serving.score(X)
    except Exception as exc:
        raise ArtifactRejected(
            f"{serving.name} v{serving.version} failed its warm-up batch: {exc!r}"
        ) from exc
    if len(predictions) != len(X) or (scores is not None and len(scores) != len(X)):
        raise ArtifactRejected(
            f"{serving.name} v{serving.version} returned {len(predictions)} predictions for "
            f"{len(X)} warm-up rows"
        )
    if any(p is None for p in predictions):
        raise ArtifactRejected(
            f"{serving.name} v{serving.version} returned no prediction for a warm-up row"
        )


def warm_up_rows(record: ModelVersion) -> NDArray[np.float64]:
    """Rows drawn from the reference sample (zeros when the version has no reference)."""
    if record.reference is None:
        return np.zeros((1, len(record.features)))
    columns = [record.reference.features[name].sample[:WARM_UP_ROWS] for name in record.features]
    size = min(len(column) for column in columns)
    if size == 0:
        return np.zeros((1, len(record.features)))
    return np.asarray([column[:size] for column in columns], dtype=float).T


def to_rows(
    events: Sequence[FeatureEvent], features: Sequence[str]
) -> tuple[NDArray[np.float64], list[int], list[tuple[int, str]]]:
    """``(X, kept, refused)``: the rows of the events that have every feature, the indices of
    those events, and ``(index, reason)`` for the others. Extra features are ignored.
    """
    rows: list[list[float]] = []
    kept: list[int] = []
    refused: list[tuple[int, str]] = []
    for index, event in enumerate(events):
        values = event.features
        try:
            rows.append([values[name] for name in features])
        except KeyError:
            missing = [name for name in features if name not in values]
            refused.append(
                (index, f"features.{missing[0]}: missing; the model needs {', '.join(features)}")
            )
            continue
        kept.append(index)
    X = np.asarray(rows, dtype=float) if rows else np.empty((0, len(features)))
    return X, kept, refused
