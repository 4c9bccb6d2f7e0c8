"""Drift statistics and the alert gate on seeded data, with exact expectations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shared.stats.drift import (
    FeatureDrift,
    ReferenceSet,
    bin_shares,
    feature_drift,
    ks,
    psi,
    ranked,
)
from shared.stats.profile import DistributionProfile, build_profile

FEATURES = [f"f{i}" for i in range(10)]
STABLE, HALF_SIGMA, SIGMA_AND_A_HALF = 0.0111, 0.2692, 2.0013


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(42).normal(size=(5_000, 10))


def test_stationary_window_is_stable_and_a_shift_is_not(reference: np.ndarray) -> None:
    edges = np.quantile(reference[:, 0], np.linspace(0, 1, 11)).tolist()
    rng = np.random.default_rng(7)
    # Seeded, so exact: stable (< 0.1), then a half-sigma and a 1.5-sigma mean shift (> 0.25).
    assert psi(edges, rng.normal(size=2_000)) == pytest.approx(STABLE, abs=1e-4)
    assert psi(edges, rng.normal(loc=0.5, size=2_000)) == pytest.approx(HALF_SIGMA, abs=1e-4)
    assert psi(edges, rng.normal(loc=1.5, size=2_000)) == pytest.approx(SIGMA_AND_A_HALF, abs=1e-4)


def test_values_beyond_the_reference_range_land_in_the_outer_bins() -> None:
    assert bin_shares([0.0, 1.0, 2.0, 3.0], [-9.0, 9.0, 9.5, 1.5]).tolist() == [0.25, 0.25, 0.5]


def test_a_constant_reference_feature_never_drifts() -> None:
    assert psi([3.0] * 11, [1.0, 2.0, 3.0]) == 0.0


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="empty window"):
        bin_shares([0.0, 1.0], [])


def test_ks_separates_same_from_shifted(reference: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    same_stat, same_p = ks(reference[:500, 0], rng.normal(size=1_000))
    shifted_stat, shifted_p = ks(reference[:500, 0], rng.normal(loc=0.5, size=1_000))
    assert same_p > 0.05
    assert shifted_p < 1e-6
    assert shifted_stat > same_stat


def test_a_mean_shift_on_two_of_ten_features_names_exactly_those_two(reference: np.ndarray) -> None:
    profile = build_profile(reference, FEATURES, None, sample_size=500, seed=0)
    rng = np.random.default_rng(11)
    window = rng.normal(size=(2_000, 10))
    window[:, 3] += 0.8
    window[:, 7] += 1.5
    drifts = {
        name: feature_drift(name, profile.features[name], window[:, i])
        for i, name in enumerate(FEATURES)
    }
    named = ranked(drifts, psi_threshold=0.2)
    assert [drift.feature for drift in named] == ["f7", "f3"]  # largest effect first
    assert named[0].mean_shift == pytest.approx(1.5, abs=0.1)
    assert all(drifts[name].psi < 0.05 for name in FEATURES if name not in ("f3", "f7"))


def test_ks_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.1, 0.3):
        a, b = rng.normal(size=500), rng.normal(loc=shift, size=1_000)
        statistic, p_value = ks(np.sort(a), b)
        expected = stats.ks_2samp(a, b, method="asymp")
        assert statistic == pytest.approx(expected.statistic)
        # scipy refines the tail (kstwo at the rounded effective size): close, not equal, when tiny.
        assert p_value == pytest.approx(expected.pvalue, rel=0.25)
        assert ks(a, b)[0] == pytest.approx(statistic)  # an unsorted reference is sorted first


def test_a_prepared_reference_gives_the_plain_definitions() -> None:
    """The monitor's fast path (:class:`ReferenceSet`) against PSI as defined and scipy's KS, on
    samples with ties and on repeated quantile edges, where a shortcut would most likely slip."""
    rng = np.random.default_rng(11)
    # Continuous values; ties; heavy ties; and windows wholly below or above the reference sample.
    for decimals, shift in [(6, 0.0), (1, 0.3), (0, 1.0), (1, -10.0), (0, 10.0)]:
        values = rng.normal(size=3_000).round(decimals)
        edges = np.quantile(values, np.linspace(0, 1, 11)).tolist()
        profile = DistributionProfile(
            quantiles=edges,
            mean=float(values.mean()),
            std=float(values.std()),
            sample=values[:500].tolist(),
        )
        window = rng.normal(loc=shift, size=1_000).round(decimals)
        found = ReferenceSet({"x": profile}).compare({"x": window})["x"]
        expected = stats.ks_2samp(values[:500], window, method="asymp")
        assert found.ks == pytest.approx(expected.statistic, abs=1e-12)
        assert found.psi == pytest.approx(psi(edges, window), abs=1e-12)
        assert found.mean_shift == pytest.approx(
            abs(window.mean() - values.mean()) / values.std(), abs=1e-12
        )


def test_ks_is_exact_on_small_samples_full_of_ties() -> None:
    """Small integer samples put the two CDFs' steps on the same points, where an off-by-one-side
    search would pair values the CDFs never take at once. Checked against the definition: the
    largest gap between the two empirical CDFs at any point of either sample."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        a = rng.integers(0, 4, size=int(rng.integers(1, 8))).astype(float)
        b = rng.integers(0, 4, size=int(rng.integers(1, 8))).astype(float)
        gap = max(abs(np.mean(a <= x) - np.mean(b <= x)) for x in np.concatenate([a, b]))
        assert ks(a, b)[0] == pytest.approx(gap, abs=1e-12), (a, b)


def test_variables_tested_together_get_what_each_gets_by_definition() -> None:
    """The monitor tests all of a model's variables as rows of one array. Rows differ in their
    merged bin edges (padded to a common width), and may differ in sample and window sizes (tested
    in separate batches): each row's result must be the plain PSI and KS of that variable alone."""
    rng = np.random.default_rng(21)
    profiles, windows = {}, {}
    # (decimals of the values: 0 repeats quantile edges; reference sample size; window size)
    for name, decimals, size, window_size in [
        ("smooth", 6, 500, 1_000),
        ("coarse", 0, 500, 1_000),
        ("constant", None, 500, 1_000),
        ("small_sample", 1, 80, 1_000),
        ("short_window", 2, 500, 300),
    ]:
        values = rng.normal(size=3_000)
        values = np.zeros(3_000) if decimals is None else values.round(decimals)
        profiles[name] = DistributionProfile(
            quantiles=np.quantile(values, np.linspace(0, 1, 11)).tolist(),
            mean=float(values.mean()),
            std=float(values.std()),
            sample=values[:size].tolist(),
        )
        shift = rng.uniform(-1, 1)
        windows[name] = rng.normal(loc=shift, size=window_size).round(decimals or 0)
    found = ReferenceSet(profiles).compare(windows)
    assert set(found) == set(windows)
    for name, window in windows.items():
        profile = profiles[name]
        statistic, p_value = ks(profile.sample, window)
        assert found[name].feature == name
        assert found[name].ks == pytest.approx(statistic, abs=1e-12), name
        assert found[name].p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300), name
        assert found[name].psi == pytest.approx(psi(profile.quantiles, window), abs=1e-12), name
    assert found["constant"].psi == 0.0


def test_a_window_without_a_reference_is_refused() -> None:
    profile = DistributionProfile(quantiles=[0.0, 1.0], mean=0.5, std=0.3, sample=[0.2, 0.7])
    with pytest.raises(ValueError, match="no reference profile for y"):
        ReferenceSet({"x": profile}).compare({"x": [0.5], "y": [0.5]})
    with pytest.raises(ValueError, match="non-empty"):
        ReferenceSet({"x": profile}).compare({"x": []})


# ---- discrete and tied features: a bin per value, and the reference's real shares ----------


def _compare(reference: np.ndarray, window: np.ndarray) -> FeatureDrift:
    profile = build_profile(reference[:, None], ["x"], None, sample_size=500)
    return ReferenceSet(profile.features).compare({"x": window})["x"]


def test_a_binary_feature_whose_share_moves_drifts_and_one_that_does_not_stays_quiet() -> None:
    """scikit-learn's diabetes ``sex`` (two scaled values, 47% of one): its quantile edges
    coincide, so its PSI was always 0, however far the share moved."""
    from sklearn.datasets import load_diabetes  # noqa: PLC0415 - bundled with scikit-learn

    sex = load_diabetes().data[:, 1]
    levels = np.unique(sex)
    assert levels.size == 2
    rng = np.random.default_rng(5)
    share = float(np.mean(sex == levels[1]))
    same = rng.choice(levels, size=1_000, p=[1 - share, share])
    moved = rng.choice(levels, size=1_000, p=[0.2, 0.8])
    quiet, drifted = _compare(sex, same), _compare(sex, moved)
    assert quiet.psi < 0.02
    assert drifted.psi > 0.4 and drifted.p_value < 1e-10


def test_a_three_level_integer_feature_scores_zero_unchanged_and_its_shift_is_seen() -> None:
    """Equal shares per merged bin gave a stationary 3-level feature a PSI of 0.36 to 0.42."""
    rng = np.random.default_rng(6)
    reference = rng.choice([1.0, 2.0, 3.0], size=5_000, p=[0.6, 0.3, 0.1])
    quiet = _compare(reference, rng.choice([1.0, 2.0, 3.0], size=1_000, p=[0.6, 0.3, 0.1]))
    moved = _compare(reference, rng.choice([1.0, 2.0, 3.0], size=1_000, p=[0.3, 0.3, 0.4]))
    assert quiet.psi < 0.02
    assert moved.psi > 0.3 and moved.p_value < 1e-10


def test_psi_of_a_tied_continuous_feature_uses_the_real_bin_shares() -> None:
    """70% zeros and a continuous tail: the quantile bins hold unequal shares."""
    rng = np.random.default_rng(7)

    def draw(n: int) -> np.ndarray:
        return np.where(rng.random(n) < 0.7, 0.0, rng.exponential(size=n))

    reference = draw(5_000)
    assert _compare(reference, draw(1_000)).psi < 0.03
    profile = build_profile(reference[:, None], ["x"], None).features["x"]
    assert profile.shares is not None and max(profile.shares) > 0.6
    window = draw(1_000)
    assert psi(profile.quantiles, window, profile.shares) == pytest.approx(
        _compare(reference, window).psi
    )
