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
    unique = _merged(edges)
    if len(unique) < 2:
        return 0.0  # a constant reference feature: nothing to compare bins against
    return _psi_of_shares(bin_shares(unique, window))


def _merged(edges: Sequence[float]) -> list[float]:
    """Quantile edges with the coinciding ones merged (a feature with repeated values)."""
    return sorted({float(edge) for edge in edges})


def _psi_of_shares(shares: np.ndarray) -> float:
    """PSI of a window's bin shares against equal expected shares (quantile bins)."""
    actual = np.clip(shares, EPSILON, None)
    expected = 1.0 / actual.size
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference_sample: ArrayLike, window: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value, window against reference.

    The statistic is exact; the p-value is the Kolmogorov distribution's tail at
    ``sqrt(n m / (n + m)) D`` (scipy's ``ks_2samp(method="asymp")``). Written out with numpy because
    the monitor runs it a dozen times every few hundred events and ``scipy.stats.ks_2samp`` costs
    about a millisecond in argument handling alone.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> d, p = ks(np.sort(rng.normal(size=500)), rng.normal(loc=0.5, size=800))
    >>> round(d, 3), p < 1e-10
    (0.226, True)
    """
    a = np.sort(np.asarray(reference_sample, dtype=float))
    b = np.sort(np.asarray(window, dtype=float))
    if a.size == 0 or b.size == 0:
        raise ValueError("KS needs two non-empty samples")
    return _ks_sorted(a, *_own_cdf(a), b)


def _own_cdf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sorted sample's empirical CDF at each of its points, and just below each."""
    return (
        np.searchsorted(a, a, side="right") / a.size,
        np.searchsorted(a, a, side="left") / a.size,
    )


def _ks_sorted(
    a: np.ndarray, a_cdf: np.ndarray, a_below: np.ndarray, b: np.ndarray
) -> tuple[float, float]:
    """KS of sorted ``b`` against sorted ``a``, whose empirical CDF is ``a_cdf`` at its own points
    and ``a_below`` just below them (:func:`_own_cdf`).

    Between two consecutive distinct points of ``a`` its CDF is flat and ``b``'s only rises, so
    the largest gap there is at one end: at the first point (``b``'s CDF at it) or just before the
    next (``b``'s CDF just below it, against ``a``'s just below it). Below ``a``'s first point and
    from its last on, the same two ends bound it. So two searchsorted calls with ``a``'s points as
    keys give the exact statistic.
    """
    from scipy.special import kolmogorov  # noqa: PLC0415 - scipy is slow to import: on first use

    n, m = a.size, b.size
    at = np.abs(a_cdf - np.searchsorted(b, a, side="right") / m).max()
    below = np.abs(a_below - np.searchsorted(b, a, side="left") / m).max()
    statistic = float(max(at, below))
    effective = n * m / (n + m)
    return statistic, float(min(1.0, kolmogorov(math.sqrt(effective) * statistic)))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift evidence over a window."""

    feature: str
    psi: float
    ks: float
    p_value: float
    mean_shift: float
    """Shift of the window's mean in reference standard deviations (the effect size)."""


class Reference:
    """One variable's reference profile, prepared once for many windows: the sample sorted with its
    own CDF, and the merged inner bin edges. The monitor tests a dozen variables every few hundred
    events against the same references, and this preparation was most of what each test cost.

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> values = rng.normal(size=2_000)
    >>> profile = DistributionProfile(quantiles=np.quantile(values, np.linspace(0, 1, 11)).tolist(),
    ...     mean=float(values.mean()), std=float(values.std()), sample=values[:500].tolist())
    >>> drift = Reference(profile).compare("x", rng.normal(loc=1.0, size=1_000))
    >>> round(drift.psi, 2), round(drift.mean_shift, 1), drift.p_value < 1e-10
    (1.1, 1.1, True)
    """

    def __init__(self, profile: DistributionProfile) -> None:
        self.profile = profile
        self._sample = np.sort(np.asarray(profile.sample, dtype=float))
        if self._sample.size == 0:
            raise ValueError("the reference profile has an empty sample")
        self._sample_cdf, self._sample_below = _own_cdf(self._sample)
        unique = _merged(profile.quantiles)
        self._bins = len(unique) - 1
        self._inner = np.asarray(unique[1:-1], dtype=float)
        self._scale = profile.std if profile.std > 0 else 1.0

    def compare(self, name: str, window: ArrayLike) -> FeatureDrift:
        """PSI, KS and standardised mean shift of ``window`` against this reference."""
        data = np.sort(np.asarray(window, dtype=float))
        if data.size == 0:
            raise ValueError("cannot compare an empty window")
        statistic, p_value = _ks_sorted(self._sample, self._sample_cdf, self._sample_below, data)
        return FeatureDrift(
            feature=name,
            psi=self._psi(data),
            ks=statistic,
            p_value=p_value,
            mean_shift=abs(float(data.mean()) - self.profile.mean) / self._scale,
        )

    def _psi(self, data: np.ndarray) -> float:
        """:func:`psi` of sorted ``data`` over the prepared edges: each bin's count from where its
        edges fall in the data (a dozen keys to look up, not a thousand)."""
        if self._bins < 1:
            return 0.0
        below = np.searchsorted(data, self._inner, side="left")  # values under each inner edge
        counts = np.diff(below, prepend=0, append=data.size)
        return _psi_of_shares(counts / data.size)


def feature_drift(name: str, reference: DistributionProfile, window: ArrayLike) -> FeatureDrift:
    """PSI, KS and standardised mean shift of one feature's ``window`` (see :class:`Reference`,
    which keeps the preparation for the next window)."""
    return Reference(reference).compare(name, window)


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
