"""Categorical drift figures against scipy's on the same counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shared.stats.categorical import chi_square_drift, jensen_shannon
from shared.stats.drift import category_drift
from shared.stats.profile import CategoryProfile, describe_categories


@pytest.mark.parametrize(
    ("expected", "counts"),
    [
        ([0.1, 0.6, 0.3], [400, 400, 200]),
        ([0.45, 0.3, 0.15, 0.1], [300, 200, 100, 400]),
        ([0.5, 0.5], [530, 470]),
        ([0.2] * 5, [210, 190, 205, 195, 200]),
        ([0.05, 0.05, 0.9], [1, 0, 99]),
    ],
)
def test_chi_square_and_jensen_shannon_match_scipy(
    expected: list[float], counts: list[int]
) -> None:
    found = chi_square_drift(expected, counts)
    n = sum(counts)
    theirs = stats.chisquare(counts, f_exp=np.asarray(expected) * n)
    assert found.statistic == pytest.approx(theirs.statistic, rel=1e-9)
    assert found.p_value == pytest.approx(theirs.pvalue, rel=1e-6, abs=1e-300)
    assert found.dof == len(counts) - 1
    shares = np.asarray(counts) / n
    assert found.distance == pytest.approx(jensenshannon(expected, shares, base=2), abs=1e-9)
    assert jensen_shannon(expected, shares) == pytest.approx(found.distance)


def test_stationary_counts_are_not_significant_and_a_moved_share_is() -> None:
    rng = np.random.default_rng(0)
    reference = [0.45, 0.3, 0.15, 0.1]
    p_values = [
        chi_square_drift(reference, rng.multinomial(1_000, reference)).p_value for _ in range(2_000)
    ]
    # Under no change the p-value is uniform: about 5% below 0.05.
    assert 0.03 < np.mean(np.asarray(p_values) < 0.05) < 0.07
    moved = chi_square_drift(reference, rng.multinomial(1_000, [0.3, 0.2, 0.1, 0.4]))
    assert moved.p_value < 1e-50 and moved.psi > 0.2


def test_a_category_never_seen_in_training_is_a_large_but_finite_change() -> None:
    profile = describe_categories(["a"] * 60 + ["b"] * 40)
    assert profile.other == 0.0
    found = category_drift("c", profile, ["a"] * 50 + ["b"] * 30 + ["new"] * 20)
    assert found is not None and np.isfinite(found.psi) and found.psi > 0.2
    assert found.moved[0] == ("(other)", 0.0, 0.2)


def test_missing_values_are_left_to_data_quality() -> None:
    profile = CategoryProfile(100, ["a", "b"], [0.5, 0.5], 0.0, 0.0)
    found = category_drift("c", profile, ["a", "b"] * 40 + [None] * 20)
    assert found is not None and found.psi < 1e-6 and found.p_value > 0.9
    assert category_drift("c", profile, [None] * 10) is None
