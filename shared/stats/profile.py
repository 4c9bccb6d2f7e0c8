"""The reference profile of a model's training data, which drift is measured against.

Per feature: quantile edges (for PSI bins), mean, standard deviation and a seeded sample (for a
two-sample KS test); the same for the model's scores on its training data (prediction drift).

>>> import numpy as np
>>> X = np.arange(100, dtype=float).reshape(50, 2)
>>> profile = build_profile(X, ["a", "b"], scores=None, sample_size=5, bins=4, seed=0)
>>> profile.n, profile.features["a"].quantiles
(50, [0.0, 24.5, 49.0, 73.5, 98.0])
>>> len(profile.features["b"].sample)
5
"""

from __future__ import annotations

import msgspec
import numpy as np
from numpy.typing import NDArray


class DistributionProfile(msgspec.Struct, frozen=True):
    """One variable's distribution: quantile edges, moments and a sample."""

    quantiles: list[float]
    mean: float
    std: float
    sample: list[float]


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
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    rng = np.random.default_rng(seed)
    size = min(sample_size, values.size)
    sample = rng.choice(values, size=size, replace=False) if size < values.size else values
    return DistributionProfile(
        quantiles=[float(edge) for edge in edges],
        mean=float(values.mean()),
        std=float(values.std()),
        sample=[float(value) for value in sample],
    )


def build_profile(
    X: NDArray[np.float64],
    features: list[str],
    scores: NDArray[np.float64] | None,
    *,
    sample_size: int = 500,
    bins: int = 10,
    seed: int = 0,
) -> ReferenceProfile:
    """Profile every column of ``X`` (named by ``features``) and, when given, the model's scores."""
    if X.ndim != 2 or X.shape[1] != len(features):
        raise ValueError(f"X has shape {X.shape}, expected (n, {len(features)})")
    columns = {
        name: describe(X[:, index], sample_size, bins, seed + index)
        for index, name in enumerate(features)
    }
    score = None if scores is None else describe(scores.astype(float), sample_size, bins, seed)
    return ReferenceProfile(n=int(X.shape[0]), features=columns, score=score)
