"""A model ready to serve: verified, checked and warmed up from its stored record and artifact.

:func:`load_serving_model` does everything that can fail or take time (sha256, signature,
deserialize, feature check, warm-up batch), so that the predictor's loop only swaps a reference;
the caller fetches the record and the artifact (``shared.registry.loading`` from the registry).
The warm-up also compiles a scikit-learn version's pipeline where it can
(:mod:`shared.models.compiled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.core.errors import ArtifactRejected
from shared.core.kinds import Task
from shared.core.schema import Schema, Value
from shared.models.algorithms import Family, Scorer
from shared.models.artifacts import load_verified
from shared.models.pipelines import remember_pandas_is_absent
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
    schema: Schema

    def score(self, X: NDArray[Any]) -> tuple[list[Any], list[float] | None]:
        return self.scorer.score(X)


def load_serving_model(record: ModelVersion, artifact: bytes, verifier: Verifier) -> ServingModel:
    """Verify, deserialize, check and warm up the version ``record`` describes.

    Raises :class:`ArtifactRejected` when the artifact does not verify or does not behave.
    """
    model, version = record.model, record.version
    if not record.features:
        raise ArtifactRejected(f"{model} v{version} has an empty feature list")
    remember_pandas_is_absent()
    fitted = load_verified(artifact, record, verifier)
    family: Family = "sklearn" if record.format == "skops" else "river"
    scorer = Scorer(fitted, family, record.task, record.features, record.classes)
    schema = record.feature_schema
    if schema.names != list(record.features):
        raise ArtifactRejected(f"{model} v{version}'s schema does not list its features in order")
    serving = ServingModel(model, version, record.task, tuple(record.features), scorer, schema)
    warm_up(serving, record)
    return serving


def warm_up(serving: ServingModel, record: ModelVersion) -> None:
    """Compile the version's pipeline where it can be (checked against scikit-learn on the
    warm-up rows and on rows of gaps and unseen categories), then score a batch of reference
    rows: a model that fails or returns the wrong shape is refused."""
    X = warm_up_rows(record)
    serving.scorer.compile(np.vstack([X, odd_rows(serving.schema)]))
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


def warm_up_rows(record: ModelVersion) -> NDArray[Any]:
    """Rows drawn from the reference: each number's sample, each category's training categories
    in turn; a feature with neither is missing where the version imputes, else 0 (as every
    feature is when the version has no reference)."""
    schema = record.feature_schema
    reference = record.reference
    numbers = reference.features if reference is not None else {}
    categories = reference.categories if reference is not None else {}
    samples = [numbers[name].sample[:WARM_UP_ROWS] for name in schema.names if name in numbers]
    size = min((len(sample) for sample in samples), default=0) or 1
    gap: Value = None if schema.missing else 0.0
    columns: list[list[Value]] = []
    for name in schema.names:
        if name in numbers:
            columns.append(list(numbers[name].sample[:size]))
        elif name in categories and categories[name].categories:
            known = categories[name].categories
            columns.append([known[i % len(known)] for i in range(size)])
        else:
            columns.append([gap] * size)
    return schema.matrix([list(row) for row in zip(*columns, strict=True)])


def odd_rows(schema: Schema) -> NDArray[Any]:
    """Rows a compiled pipeline must also get right: every feature missing (where the version
    imputes), and every category one no version has seen."""
    unseen: list[Value] = [
        "(a category never seen)" if spec.kind == "categorical" else 1.0 for spec in schema.features
    ]
    rows = [unseen]
    if schema.missing:
        rows.append([None] * len(schema.features))
    return schema.matrix(rows)
