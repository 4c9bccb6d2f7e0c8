"""Data drift statistics against a model's reference profile: pure functions, no I/O, no clock.

PSI (population stability index) compares a window's share of values in each of the reference's
quantile bins with the reference's own share; a two-sample Kolmogorov-Smirnov test (scipy) compares
the window with the reference sample. Conventional PSI reading: below 0.1 stable, 0.1-0.25 a moderate
shift, above 0.25 a large one.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=5_000)
>>> edges = np.quantile(reference, np.linspace(0, 1, 11)).tolist()
>>> round(psi(edges, rng.normal(size=2_000)), 3)
0.007
>>> round(psi(edges, rng.normal(loc=1.0, size=2_000)), 2)
0.97
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from shared.profile import DistributionProfile

EPSILON = 1e-4
"""Floor on a bin's share, so that an empty bin gives a large but finite PSI."""


def bin_shares(edges: Sequence[float], values: ArrayLike) -> np.ndarray:
    """Share of ``values`` in each bin between consecutive ``edges``; the outer bins are open, so
    values beyond the reference's range still count (in the first or last bin).

    >>> bin_shares([0.0, 1.0, 2.0], [-5.0, 0.5, 1.5, 1.7]).tolist()
    [0.5, 0.5]
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("cannot bin an empty window")
    inner = np.asarray(edges[1:-1], dtype=float)
    counts = np.bincount(np.searchsorted(inner, data, side="right"), minlength=len(edges) - 1)
    return counts / data.size


def psi(edges: Sequence[float], window: ArrayLike) -> float:
    """PSI of ``window`` against a reference described by its quantile ``edges``.

    Quantile edges put an equal share of the reference in each bin, so the expected shares are
    ``1 / bins``; edges that coincide (a feature with repeated values) are merged first.
    """
    unique = sorted(set(float(edge) for edge in edges))
    if len(unique) < 2:
        return 0.0  # a constant reference feature: nothing to compare bins against
    actual = np.clip(bin_shares(unique, window), EPSILON, None)
    expected = np.full(actual.size, 1.0 / actual.size)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference_sample: ArrayLike, window: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value, window against reference.

    The statistic is exact; the p-value is the Kolmogorov distribution's tail at
    ``sqrt(n m / (n + m)) D`` (scipy's ``ks_2samp(method="asymp")``). Written out with numpy because
    the monitor runs it a dozen times every few hundred events and ``scipy.stats.ks_2samp`` costs
    about a millisecond in argument handling alone. Pass ``reference_sample`` sorted to save a sort.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> d, p = ks(np.sort(rng.normal(size=500)), rng.normal(loc=0.5, size=800))
    >>> round(d, 3), p < 1e-10
    (0.226, True)
    """
    from scipy.special import kolmogorov  # noqa: PLC0415 - imported on first use, like the rest of scipy

    a = np.asarray(reference_sample, dtype=float)
    if a.size > 1 and np.any(a[1:] < a[:-1]):
        a = np.sort(a)
    b = np.sort(np.asarray(window, dtype=float))
    if a.size == 0 or b.size == 0:
        raise ValueError("KS needs two non-empty samples")
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    effective = a.size * b.size / (a.size + b.size)
    return statistic, float(min(1.0, kolmogorov(np.sqrt(effective) * statistic)))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift evidence over a window."""

    feature: str
    psi: float
    ks: float
    p_value: float
    mean_shift: float
    """Shift of the window's mean in reference standard deviations (the effect size)."""


def feature_drift(
    name: str,
    reference: DistributionProfile,
    window: ArrayLike,
    reference_sorted: np.ndarray | None = None,
) -> FeatureDrift:
    """PSI, KS and standardised mean shift of one feature's ``window``; ``reference_sorted`` is the
    reference sample already sorted, when the caller keeps one."""
    data = np.asarray(window, dtype=float)
    sample = reference_sorted if reference_sorted is not None else np.sort(reference.sample)
    statistic, p_value = ks(sample, data)
    scale = reference.std if reference.std > 0 else 1.0
    return FeatureDrift(
        feature=name,
        psi=psi(reference.quantiles, data),
        ks=statistic,
        p_value=p_value,
        mean_shift=abs(float(data.mean()) - reference.mean) / scale,
    )


def ranked(drifts: Mapping[str, FeatureDrift], psi_threshold: float) -> list[FeatureDrift]:
    """The features whose PSI exceeds ``psi_threshold``, largest effect size first.

    >>> d = {n: FeatureDrift(n, p, 0.1, 0.5, s) for n, p, s in [("a", 0.3, 0.8), ("b", 0.05, 0.1), ("c", 0.5, 1.9)]}
    >>> [f.feature for f in ranked(d, 0.2)]
    ['c', 'a']
    """
    drifted = [
        drift for drift in drifts.values() if drift.psi > psi_threshold and math.isfinite(drift.psi)
    ]
    return sorted(drifted, key=lambda drift: (drift.mean_shift, drift.psi), reverse=True)
