"""The reference profile of a model's training data, which drift is measured against.

Per feature: bin edges and the share of the training values in each bin (for PSI), mean,
standard deviation and a seeded sample (for a two-sample KS test); the same for the model's scores
on its training data (prediction drift). The edges are quantiles, except for a variable with at
most :data:`MAX_LEVELS` distinct values (a 0/1 flag, an integer code): each of its values gets a bin
of its own, between midpoints, so that a change in how often each occurs moves the PSI. Quantile
edges of such a variable coincide and merge into one bin, which made its PSI always 0. The shares
are the real ones: ties make quantile bins unequal.

>>> import numpy as np
>>> X = np.arange(100, dtype=float).reshape(50, 2)
>>> profile = build_profile(X, ["a", "b"], scores=None, sample_size=5, bins=4, seed=0)
>>> profile.n, profile.features["a"].quantiles
(50, [0.0, 24.5, 49.0, 73.5, 98.0])
>>> len(profile.features["b"].sample)
5
>>> flag = describe(np.array([0.0] * 53 + [1.0] * 47), sample_size=5, bins=10, seed=0)
>>> flag.quantiles, flag.shares
([0.0, 0.5, 1.0], [0.53, 0.47])
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from shared.core.schema import Schema, numeric_schema


class DistributionProfile(msgspec.Struct, frozen=True):
    """One variable's distribution: quantile edges, moments and a sample."""

    quantiles: list[float]
    """Bin edges: quantiles, or for a few distinct values the midpoints between them."""
    mean: float
    std: float
    sample: list[float]
    shares: list[float] | None = None
    """The training values' share in each bin between the distinct edges (the outer bins open);
    None in profiles made before shares were kept: then each bin counts as ``1 / bins``."""


MAX_LEVELS = 10
"""A variable with at most this many distinct values is binned by value, not by quantile."""


def bin_counts(edges: list[float], values: NDArray[np.float64]) -> NDArray[np.int64]:
    """How many ``values`` fall in each bin between consecutive distinct ``edges`` (the outer
    bins open: values beyond the range count in the first or last bin)."""
    inner = np.asarray(sorted(set(edges))[1:-1], dtype=float)
    return np.bincount(np.searchsorted(inner, values, side="right"), minlength=inner.size + 1)


class ReferenceProfile(msgspec.Struct, frozen=True):
    """The distributions a model was trained on; ``score`` is absent for a model without scores."""

    n: int
    features: dict[str, DistributionProfile]
    score: DistributionProfile | None = None


def describe(
    values: NDArray[np.float64], sample_size: int, bins: int, seed: int
) -> DistributionProfile:
    """Profile of one variable; the sample is drawn without replacement with ``seed``."""
    if values.size == 0:
        raise ValueError("cannot profile an empty column")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    levels = np.unique(values)
    if 2 <= levels.size <= MAX_LEVELS:
        edges = np.concatenate(([levels[0]], (levels[:-1] + levels[1:]) / 2, [levels[-1]]))
    else:
        edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    quantiles = [float(edge) for edge in edges]
    counts = bin_counts(quantiles, values)
    rng = np.random.default_rng(seed)
    size = min(sample_size, values.size)
    sample = rng.choice(values, size=size, replace=False) if size < values.size else values
    return DistributionProfile(
        quantiles=quantiles,
        mean=float(values.mean()),
        std=float(values.std()),
        sample=[float(value) for value in sample],
        shares=[round(float(count) / values.size, 12) for count in counts],
    )


def build_profile(
    X: NDArray[Any],
    features: list[str] | Schema,
    scores: NDArray[np.float64] | None,
    *,
    sample_size: int = 500,
    bins: int = 10,
    seed: int = 0,
) -> ReferenceProfile:
    """Profile every column of ``X`` (named by ``features``, or by a schema) and, when given,
    the model's scores. Missing values (NaN) are left out; a categorical column, or one with no
    value at all, has no distribution profile (it is not tested for drift as a number)."""
    schema = features if isinstance(features, Schema) else numeric_schema(features)
    if X.ndim != 2 or X.shape[1] != len(schema.features):
        raise ValueError(f"X has shape {X.shape}, expected (n, {len(schema.features)})")
    columns = {}
    for index, spec in enumerate(schema.features):
        if spec.kind == "categorical":
            continue
        values = np.asarray(X[:, index], dtype=float)
        values = values[~np.isnan(values)]
        if values.size:
            columns[spec.name] = describe(values, sample_size, bins, seed + index)
    score = None if scores is None else describe(scores.astype(float), sample_size, bins, seed)
    return ReferenceProfile(n=int(X.shape[0]), features=columns, score=score)
