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


TOP_CATEGORIES = 20
"""A categorical feature's reference keeps the shares of its most frequent categories, this many
at most; the rest count together as :data:`OTHER`."""
OTHER = "(other)"
MISSING = "(missing)"


class CategoryProfile(msgspec.Struct, frozen=True):
    """A categorical feature's distribution: the share of each of its top categories, of all the
    others together and of missing values, over ``n`` training rows (the shares sum to 1)."""

    n: int
    categories: list[str]
    shares: list[float]
    other: float
    missing: float

    @property
    def levels(self) -> list[str]:
        """The categories a window is counted in: the top ones, then other and missing."""
        return [*self.categories, OTHER, MISSING]

    @property
    def expected(self) -> list[float]:
        return [*self.shares, self.other, self.missing]

    def counts(self, values: list[str | None]) -> NDArray[np.int64]:
        """How many of ``values`` fall in each of :attr:`levels`.

        >>> CategoryProfile(4, ["a", "b"], [0.5, 0.25], 0.25, 0.0).counts(["a", "z", None, "a"]).tolist()
        [2, 0, 1, 1]
        """
        index = {category: i for i, category in enumerate(self.categories)}
        other, missing = len(self.categories), len(self.categories) + 1
        codes = [missing if v is None else index.get(v, other) for v in values]
        return np.bincount(np.asarray(codes, dtype=np.int64), minlength=missing + 1)


def describe_categories(values: list[str | None], top: int = TOP_CATEGORIES) -> CategoryProfile:
    """The profile of one categorical column (None: missing).

    >>> describe_categories(["DE", "FR", "DE", None, "IT"], top=2)
    CategoryProfile(n=5, categories=['DE', 'FR'], shares=[0.4, 0.2], other=0.2, missing=0.2)
    """
    if not values:
        raise ValueError("cannot profile an empty column")
    present = [value for value in values if value is not None]
    counted: dict[str, int] = {}
    for value in present:
        counted[value] = counted.get(value, 0) + 1
    # Most frequent first; ties by name, so the same data always gives the same profile.
    ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:top]
    n = len(values)
    kept = sum(count for _, count in ranked)
    return CategoryProfile(
        n=n,
        categories=[name for name, _ in ranked],
        shares=[round(count / n, 12) for _, count in ranked],
        other=round((len(present) - kept) / n, 12),
        missing=round((n - len(present)) / n, 12),
    )


class ReferenceProfile(msgspec.Struct, frozen=True):
    """The distributions a model was trained on; ``score`` is absent for a model without scores.

    ``features`` holds the numbers and booleans (as 0/1), ``categories`` the categorical
    features; ``missing`` each feature's share of missing values in training."""

    n: int
    features: dict[str, DistributionProfile]
    score: DistributionProfile | None = None
    categories: dict[str, CategoryProfile] = {}
    missing: dict[str, float] = {}


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
    the model's scores. Missing values (NaN, or None in a categorical column) are left out of the
    distributions and counted in ``missing``; a categorical column gets a :class:`CategoryProfile`;
    a numeric column with no value at all has no distribution profile."""
    schema = features if isinstance(features, Schema) else numeric_schema(features)
    if X.ndim != 2 or X.shape[1] != len(schema.features):
        raise ValueError(f"X has shape {X.shape}, expected (n, {len(schema.features)})")
    columns = {}
    categories = {}
    missing = {}
    rows = max(1, X.shape[0])
    for index, spec in enumerate(schema.features):
        if spec.kind == "categorical":
            profile = describe_categories(list(X[:, index]))
            categories[spec.name] = profile
            missing[spec.name] = profile.missing
            continue
        values = np.asarray(X[:, index], dtype=float)
        values = values[~np.isnan(values)]
        missing[spec.name] = round((X.shape[0] - values.size) / rows, 12)
        if values.size:
            columns[spec.name] = describe(values, sample_size, bins, seed + index)
    score = None if scores is None else describe(scores.astype(float), sample_size, bins, seed)
    return ReferenceProfile(
        n=int(X.shape[0]), features=columns, score=score, categories=categories, missing=missing
    )
