"""Drift of a categorical variable against its reference shares: pure functions, no I/O.

A window's counts over the reference's levels (its top categories and "other"; missing values are
a data-quality matter, not a shift of the categories) are tested with Pearson's chi-square test
against the reference shares, and measured by PSI over the same levels (the distance the alert
threshold applies to, as for numbers) and by the Jensen-Shannon distance (base 2, in [0, 1]). The
effect size is Cohen's w, ``sqrt(chi2 / n)``, given on the scale of a standardised mean shift
(``d = 2w / sqrt(1 - w^2)``, the usual conversion) so that numeric and categorical features rank
together.

A level the reference never saw (a share of 0: "other" when every training category is among the
top ones) is floored at :data:`~shared.stats.drift.EPSILON`, as PSI's empty bins are, so a new
category shows as a large but finite change.

>>> drift = chi_square_drift([0.1, 0.6, 0.3], [400, 400, 200])
>>> round(drift.statistic, 1), drift.p_value < 1e-50, round(drift.psi, 2), round(drift.distance, 3)
(1000.0, True, 0.54, 0.302)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

EPSILON = 1e-4
"""Floor on a level's share (the same as PSI's on a bin's)."""


@dataclass(frozen=True)
class LevelDrift:
    """A window's counts over some levels against the reference's shares of them."""

    statistic: float
    """Pearson's chi-square."""
    p_value: float
    dof: int
    psi: float
    distance: float
    """Jensen-Shannon distance, base 2."""
    effect: float
    """Cohen's w on the scale of a standardised mean shift."""
    shares: list[float]
    """The window's share of each level."""


def chi_square_drift(expected: ArrayLike, counts: ArrayLike) -> LevelDrift:
    """Chi-square test, PSI and Jensen-Shannon distance of ``counts`` (one per level) against the
    reference's ``expected`` shares of the same levels (renormalised to sum to 1)."""
    from scipy.special import chdtrc  # noqa: PLC0415 - scipy is slow to import: on first use

    observed = np.asarray(counts, dtype=float)
    reference = np.clip(np.asarray(expected, dtype=float), 0.0, None)
    if observed.shape != reference.shape or observed.ndim != 1 or observed.size < 1:
        raise ValueError("expected one count per reference level")
    n = observed.sum()
    if n <= 0 or reference.sum() <= 0:
        raise ValueError("cannot test an empty window or an empty reference")
    reference = np.clip(reference / reference.sum(), EPSILON, None)
    reference /= reference.sum()
    used = (reference > EPSILON) | (observed > 0)  # a level neither side has is no level
    statistic = float(np.sum((observed - n * reference) ** 2 / (n * reference)))
    dof = max(1, int(used.sum()) - 1)
    shares = observed / n
    actual = np.clip(shares, EPSILON, None)
    psi = float(np.sum(np.where(used, (actual - reference) * np.log(actual / reference), 0.0)))
    w = min(math.sqrt(statistic / n), 0.999)
    return LevelDrift(
        statistic=statistic,
        p_value=float(chdtrc(dof, statistic)),
        dof=dof,
        psi=psi,
        distance=jensen_shannon(reference, shares),
        effect=2 * w / math.sqrt(1 - w * w),
        shares=[float(share) for share in shares],
    )


def jensen_shannon(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) between two distributions over the same levels.

    >>> jensen_shannon([0.5, 0.5], [0.5, 0.5]), jensen_shannon([1.0, 0.0], [0.0, 1.0])
    (0.0, 1.0)
    """
    a = np.asarray(p, dtype=float)
    b = np.asarray(q, dtype=float)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2
    divergence = 0.0
    for x in (a, b):
        present = x > 0
        divergence += float(np.sum(x[present] * np.log2(x[present] / m[present]))) / 2
    return math.sqrt(max(divergence, 0.0))


def moved_most(
    levels: Sequence[str], before: Sequence[float], after: Sequence[float], top: int = 3
) -> list[tuple[str, float, float]]:
    """The ``top`` levels whose share moved most, as ``(level, from, to)``, largest move first.

    >>> moved_most(["DE", "FR", "IT"], [0.1, 0.6, 0.3], [0.4, 0.4, 0.2], top=2)
    [('DE', 0.1, 0.4), ('FR', 0.6, 0.4)]
    """
    moves = sorted(zip(levels, before, after, strict=True), key=lambda m: (-abs(m[2] - m[1]), m[0]))
    return [(level, float(a), float(b)) for level, a, b in moves[:top] if a != b]
