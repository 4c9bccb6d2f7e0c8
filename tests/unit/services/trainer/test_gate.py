"""The promotion gate: a better candidate is promoted, an equal or worse one never is."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.gate import decide


def _classification(n: int, champion_acc: float, candidate_acc: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size=n)
    champion = np.where(rng.random(n) < champion_acc, truth, 1 - truth)
    candidate = np.where(rng.random(n) < candidate_acc, truth, 1 - truth)
    return truth.tolist(), champion.tolist(), candidate.tolist()


def test_a_clearly_better_classifier_is_promoted_with_its_evidence() -> None:
    decision = decide("classification", *_classification(2_000, 0.6, 0.9))
    assert decision.promote
    assert decision.test == "mcnemar" and decision.p_value < 1e-6
    assert decision.candidate > decision.champion + 0.2


@pytest.mark.parametrize("candidate_acc", [0.6, 0.5])
def test_an_equal_or_worse_classifier_is_rejected(candidate_acc: float) -> None:
    decision = decide("classification", *_classification(2_000, 0.6, candidate_acc))
    assert not decision.promote
    assert "does not beat" in decision.reason or "not significant" in decision.reason


def test_a_small_unproven_gain_is_rejected_as_not_significant() -> None:
    truth = [1] * 60
    champion = [1] * 50 + [0] * 10
    candidate = [1] * 52 + [0] * 8  # 3 points better on 60 events: above the margin, not proven
    decision = decide("classification", truth, champion, candidate)
    assert not decision.promote and "not significant" in decision.reason


def test_regression_uses_a_paired_bootstrap_on_the_squared_error() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=500)
    champion = truth + rng.normal(scale=1.0, size=500)
    candidate = truth + rng.normal(scale=0.5, size=500)
    better = decide("regression", truth.tolist(), champion.tolist(), candidate.tolist())
    assert better.promote and better.test == "paired-bootstrap" and better.metric == "mse"
    worse = decide("regression", truth.tolist(), candidate.tolist(), champion.tolist())
    assert not worse.promote


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        decide("classification", [1, 0], [1], [1, 0])
