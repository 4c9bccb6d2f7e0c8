"""Data drift statistics against a model's reference profile: pure functions, no I/O, no clock.

PSI (population stability index) compares a window's share of values in each of the reference's
bins with the reference's own share in it (its real share: with ties, quantile bins are unequal;
a variable of a few values has a bin per value, :mod:`shared.stats.profile`); a two-sample
Kolmogorov-Smirnov test (scipy) compares the window with the reference sample. Conventional PSI
reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

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
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from shared.stats.categorical import chi_square_drift, moved_most
from shared.stats.profile import MAX_LEVELS, CategoryProfile, DistributionProfile

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


def psi(
    edges: Sequence[float], window: ArrayLike, expected: Sequence[float] | None = None
) -> float:
    """PSI of ``window`` against a reference described by its bin ``edges`` and its ``expected``
    share in each bin between the distinct edges (default: equal shares, as quantile bins of a
    variable without ties have).

    >>> round(psi([0.0, 0.5, 1.0], [1.0] * 80 + [0.0] * 20, expected=[0.53, 0.47]), 2)
    0.5
    """
    unique = _merged(edges)
    if len(unique) < 2:
        return 0.0  # a constant reference feature: nothing to compare bins against
    return _psi_of_shares(bin_shares(unique, window), expected)


def _merged(edges: Sequence[float]) -> list[float]:
    """Quantile edges with the coinciding ones merged (a feature with repeated values)."""
    return sorted({float(edge) for edge in edges})


def _psi_of_shares(shares: np.ndarray, expected: Sequence[float] | None = None) -> float:
    """PSI of a window's bin shares against the reference's (equal shares when not given)."""
    actual = np.clip(shares, EPSILON, None)
    reference = (
        np.full(actual.size, 1.0 / actual.size)
        if expected is None or len(expected) != actual.size
        else np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    )
    return float(np.sum((actual - reference) * np.log(actual / reference)))


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
    b = np.asarray(window, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("KS needs two non-empty samples")
    rows = a[None, :]
    statistic, p_value = _ks_rows(rows, *_own_counts(rows), np.sort(b)[None, :])
    return float(statistic[0]), float(p_value[0])


def _own_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a`` (sorted), how many of its values are at or below each of its points,
    and how many are strictly below."""
    at, below = np.empty(a.shape, dtype=np.int64), np.empty(a.shape, dtype=np.int64)
    for row, values in enumerate(a):
        at[row] = np.searchsorted(values, values, side="right")
        below[row] = np.searchsorted(values, values, side="left")
    return at, below


def _ks_rows(
    a: np.ndarray, a_at: np.ndarray, a_below: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic and asymptotic p-value of each row of ``b`` against the same row of ``a``;
    both sorted along their rows (``a`` is ``k x n``, ``b`` is ``k x m``), with ``a``'s own counts
    at and below each of its points (:func:`_own_counts`, prepared once).

    Between two consecutive distinct points of ``a`` its CDF is flat and ``b``'s only rises, so
    the largest gap there is at one end: at the first point (``b``'s CDF at it) or just before the
    next (``b``'s CDF just below it, against ``a``'s just below it). Below ``a``'s first point and
    from its last on, the same two ends bound it. So two searches with ``a``'s points as keys give
    the exact statistic, counted in integers as ``n m (F_a - F_b)``. The searches go row by row
    (numpy has no batched search); the arithmetic is done for all rows at once, which is what makes
    a dozen variables cost little more than one.
    """
    from scipy.special import kolmogorov  # noqa: PLC0415 - scipy is slow to import: on first use

    n, m = a.shape[1], b.shape[1]
    b_at, b_below = np.empty(a.shape, dtype=np.int64), np.empty(a.shape, dtype=np.int64)
    for row, (keys, values) in enumerate(zip(a, b, strict=True)):
        below = b_below[row] = np.searchsorted(values, keys, side="left")
        # Counts at and below differ only where a key is among the values: with no such tie
        # (continuous data) the second search is not needed.
        if (values[np.minimum(below, m - 1)] == keys).any():
            b_at[row] = np.searchsorted(values, keys, side="right")
        else:
            b_at[row] = below
    gap = np.maximum(
        np.abs(m * a_at - n * b_at).max(axis=1), np.abs(m * a_below - n * b_below).max(axis=1)
    )
    statistic = gap / (n * m)
    p_value = np.minimum(1.0, kolmogorov(math.sqrt(n * m / (n + m)) * statistic))
    return statistic, p_value


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift evidence over a window."""

    feature: str
    psi: float
    ks: float
    """The test's statistic: KS's D, or the chi-square when ``test`` is ``"chi2"``."""
    p_value: float
    mean_shift: float
    """The effect size: the shift of the window's mean in reference standard deviations (for a
    category, Cohen's w on that scale: :mod:`shared.stats.categorical`)."""
    test: Literal["ks", "chi2"] = "ks"
    """KS for a continuous number; chi-square for a category and for a number of at most
    :data:`~shared.stats.profile.MAX_LEVELS` values (a flag, a count), where KS is not valid."""
    distance: float | None = None
    """Jensen-Shannon distance (base 2) of a category's shares from the reference's."""
    moved: tuple[tuple[str, float, float], ...] = ()
    """For a category, the levels whose share moved most: ``(level, from, to)``."""


SCORE = "__score__"
"""The name of the model's score (or regression prediction) among the variables tested."""


class ReferenceSet:
    """The reference profiles of a model's variables, prepared once and tested together.

    The monitor tests a dozen variables every few hundred events against the same references.
    Prepared once: each sample sorted, and each variable's merged inner bin edges. Tested together:
    variables whose samples and windows have the same sizes (all of them, in practice) are the rows
    of one array, sorted and reduced by the same numpy calls (only KS's searches go row by row),
    because per variable the cost was numpy's per-call overhead on small arrays, not the arithmetic.

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> values = rng.normal(size=2_000)
    >>> profile = DistributionProfile(quantiles=np.quantile(values, np.linspace(0, 1, 11)).tolist(),
    ...     mean=float(values.mean()), std=float(values.std()), sample=values[:500].tolist())
    >>> found = ReferenceSet({"x": profile, "y": profile}).compare(
    ...     {"x": rng.normal(loc=1.0, size=1_000), "y": rng.normal(size=1_000)})
    >>> x, y = found["x"], found["y"]
    >>> round(x.psi, 2), round(x.mean_shift, 1), x.p_value < 1e-10, y.p_value > 0.01
    (1.1, 1.1, True, True)
    """

    def __init__(self, profiles: Mapping[str, DistributionProfile]) -> None:
        by_size: dict[int, list[str]] = {}
        for name, profile in profiles.items():
            if not profile.sample:
                raise ValueError(f"the reference profile of {name!r} has an empty sample")
            by_size.setdefault(len(profile.sample), []).append(name)
        self._groups = [
            _Group({name: profiles[name] for name in names}) for names in by_size.values()
        ]
        self._where = {name: group for group in self._groups for name in group.names}

    def compare(self, windows: Mapping[str, ArrayLike]) -> dict[str, FeatureDrift]:
        """PSI, KS and standardised mean shift of each named window against its reference."""
        unknown = sorted(set(windows) - set(self._where))
        if unknown:
            raise ValueError(f"no reference profile for {', '.join(unknown)}")
        batches: dict[tuple[int, int], list[tuple[str, np.ndarray]]] = {}
        for name, window in windows.items():
            data = np.asarray(window, dtype=float)
            if data.ndim != 1 or data.size == 0:
                raise ValueError(f"cannot compare {name!r}: expected a non-empty 1-d window")
            batches.setdefault((id(self._where[name]), data.size), []).append((name, data))
        found: dict[str, FeatureDrift] = {}
        for batch in batches.values():
            names = [name for name, _ in batch]
            found.update(self._where[names[0]].compare(names, np.stack([d for _, d in batch])))
        return found


class _Group:
    """Variables whose reference samples have the same size, as rows of arrays."""

    def __init__(self, profiles: Mapping[str, DistributionProfile]) -> None:
        self.names = list(profiles)
        self._row = {name: row for row, name in enumerate(self.names)}
        self._sample = np.sort(np.array([p.sample for p in profiles.values()], dtype=float), axis=1)
        self._at, self._below = _own_counts(self._sample)
        inner = [_merged(p.quantiles)[1:-1] for p in profiles.values()]
        self._bins = np.array([len(edges) + 1 for edges in inner])
        """Bins per variable (merged quantile edges less one); 1 for a constant reference."""
        self._inner = np.full((len(inner), max(map(len, inner), default=0)), np.inf)
        """Inner bin edges per row, padded with +inf (no value is below it: an empty extra bin)."""
        for row, edges in enumerate(inner):
            self._inner[row, : len(edges)] = edges
        self._expected = np.ones((len(inner), self._inner.shape[1] + 1))
        """The reference's share per bin (its real shares, else equal ones), floored at EPSILON;
        the padding's bins are masked out of the sum."""
        for row, profile in enumerate(profiles.values()):
            bins = int(self._bins[row])
            shares = profile.shares
            if shares is None or len(shares) != bins:
                self._expected[row, :bins] = 1.0 / bins
            else:
                self._expected[row, :bins] = np.clip(np.asarray(shares, dtype=float), EPSILON, None)
        self._mean = np.array([p.mean for p in profiles.values()], dtype=float)
        self._scale = np.array([p.std if p.std > 0 else 1.0 for p in profiles.values()])
        self._levels = np.array(
            [
                p.shares is not None
                and int(self._bins[row]) >= 2
                and len(set(p.sample)) <= MAX_LEVELS
                for row, p in enumerate(profiles.values())
            ],
            dtype=bool,
        )
        """Variables of a few values, binned by value: tested with chi-square over their bins."""

    def compare(self, names: list[str], windows: np.ndarray) -> dict[str, FeatureDrift]:
        rows = np.array([self._row[name] for name in names])
        data = np.sort(windows, axis=1)
        statistic, p_value = _ks_rows(self._sample[rows], self._at[rows], self._below[rows], data)
        psi, counts = self._psi(rows, data)
        shift = np.abs(data.mean(axis=1) - self._mean[rows]) / self._scale[rows]
        found = {}
        for i, name in enumerate(names):
            row = int(rows[i])
            test: Literal["ks", "chi2"] = "ks"
            if self._levels[row]:
                bins = int(self._bins[row])
                levels = chi_square_drift(self._expected[row, :bins], counts[i, :bins])
                statistic[i], p_value[i], test = levels.statistic, levels.p_value, "chi2"
            found[name] = FeatureDrift(
                feature=name,
                psi=float(psi[i]),
                ks=float(statistic[i]),
                p_value=float(p_value[i]),
                mean_shift=float(shift[i]),
                test=test,
            )
        return found

    def _psi(self, rows: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`psi` of each row of ``data`` over its variable's prepared edges, and the
        counts per bin it was computed from."""
        size = data.shape[1]
        edges = self._inner[rows]
        below = np.empty(edges.shape, dtype=np.int64)  # values under each edge (+inf: all)
        for row, values in enumerate(data):
            below[row] = np.searchsorted(values, edges[row], side="left")
        counts = np.diff(below, axis=1, prepend=0, append=size)
        bins = self._bins[rows][:, None]
        actual = np.clip(counts / size, EPSILON, None)
        expected = self._expected[rows]
        terms = (actual - expected) * np.log(actual / expected)
        real = np.arange(counts.shape[1]) < bins  # the padding's empty bins are not bins
        psi: np.ndarray = np.where(real, terms, 0.0).sum(axis=1)
        return psi, counts


def category_drift(
    name: str, reference: CategoryProfile, values: Sequence[str | None]
) -> FeatureDrift | None:
    """Chi-square test, PSI and Jensen-Shannon distance of a categorical window against its
    reference, over the reference's top categories and "other" (missing values left out: they
    are data quality's); None when the window holds no value.

    >>> profile = CategoryProfile(1000, ["a", "b"], [0.1, 0.6], 0.3, 0.0)
    >>> found = category_drift("c", profile, ["a"] * 400 + ["b"] * 400 + ["z"] * 200)
    >>> round(found.psi, 2), found.test, found.moved[0]
    (0.54, 'chi2', ('a', 0.1, 0.4))
    """
    counts = reference.counts(list(values))[:-1]  # the last level is "missing"
    expected = reference.expected[:-1]
    if counts.sum() == 0 or sum(expected) <= 0:
        return None
    found = chi_square_drift(expected, counts)
    total = sum(expected)
    before = [share / total for share in expected]
    return FeatureDrift(
        feature=name,
        psi=found.psi,
        ks=found.statistic,
        p_value=found.p_value,
        mean_shift=found.effect,
        test="chi2",
        distance=found.distance,
        moved=tuple(moved_most(reference.levels[:-1], before, found.shares)),
    )


def feature_drift(name: str, reference: DistributionProfile, window: ArrayLike) -> FeatureDrift:
    """PSI, KS and standardised mean shift of one feature's ``window`` (see :class:`ReferenceSet`,
    which keeps the preparation for the next windows)."""
    return ReferenceSet({name: reference}).compare({name: window})[name]


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
