"""The trainer's promotion gate: is the candidate better than the champion on the same recent data?

Both models score the same held-out slice. The candidate must win by ``margin`` on the task's score
(accuracy for classification, mean squared error for regression) *and* the win must be significant
by a paired test: McNemar's exact test on the events where exactly one model is right
(classification), or a paired bootstrap of the per-event loss difference (regression). Pure and
seeded: the same inputs give the same decision.

>>> truth = [1, 0] * 100
>>> champion = [1] * 200                     # right half the time
>>> candidate = truth[:180] + champion[180:]  # right 95% of the time
>>> decide("classification", truth, champion, candidate).promote
True
>>> decide("classification", truth, champion, champion).reason
'candidate accuracy 0.5 does not beat champion accuracy 0.5 by the margin 0.01'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.core.kinds import Task


@dataclass(frozen=True)
class Decision:
    """What the gate decided, with the evidence a `model-events` record carries."""

    promote: bool
    reason: str
    metric: str
    champion: float
    candidate: float
    p_value: float
    test: str
    n: int


def mcnemar(truth: Sequence[Any], champion: Sequence[Any], candidate: Sequence[Any]) -> float:
    """One-sided exact McNemar p-value that the candidate is right more often than the champion.

    >>> round(mcnemar([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]), 4)
    0.0312
    """
    from scipy.stats import binomtest  # noqa: PLC0415 - scipy.stats is slow to import

    t = np.asarray(truth, dtype=object)
    champion_right = np.asarray(champion, dtype=object) == t
    candidate_right = np.asarray(candidate, dtype=object) == t
    wins = int(np.sum(candidate_right & ~champion_right))
    losses = int(np.sum(champion_right & ~candidate_right))
    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)


def paired_bootstrap(
    champion_loss: Sequence[float],
    candidate_loss: Sequence[float],
    *,
    rounds: int = 2_000,
    seed: int = 0,
) -> float:
    """One-sided bootstrap p-value that the candidate's mean loss is lower than the champion's:
    the share of resampled mean differences (champion - candidate) at or below zero.

    >>> rng = np.random.default_rng(1)
    >>> base = rng.exponential(size=300)
    >>> paired_bootstrap(base + 0.5, base) < 0.01
    True
    """
    difference = np.asarray(champion_loss, dtype=float) - np.asarray(candidate_loss, dtype=float)
    if difference.size == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, difference.size, size=(rounds, difference.size))
    means = difference[picks].mean(axis=1)
    return float((np.sum(means <= 0.0) + 1) / (rounds + 1))


def decide(
    task: Task,
    truth: Sequence[Any],
    champion: Sequence[Any],
    candidate: Sequence[Any],
    *,
    margin: float = 0.01,
    alpha: float = 0.05,
    seed: int = 0,
) -> Decision:
    """Promote only when the candidate beats the champion by ``margin`` and significantly.

    ``margin`` is absolute: accuracy points for classification, a relative reduction of the mean
    squared error for regression (0.01 = 1% lower).
    """
    if not (len(truth) == len(champion) == len(candidate)) or not truth:
        raise ValueError("truth, champion and candidate must be non-empty and of equal length")
    n = len(truth)
    if task == "classification":
        t = np.asarray(truth, dtype=object)
        old = float(np.mean(np.asarray(champion, dtype=object) == t))
        new = float(np.mean(np.asarray(candidate, dtype=object) == t))
        p_value = mcnemar(truth, champion, candidate)
        metric, test, better = "accuracy", "mcnemar", new >= old + margin
        shown = f"candidate accuracy {new:.4g} does not beat champion accuracy {old:.4g}"
    else:
        y = np.asarray(truth, dtype=float)
        old_loss = (np.asarray(champion, dtype=float) - y) ** 2
        new_loss = (np.asarray(candidate, dtype=float) - y) ** 2
        old, new = float(old_loss.mean()), float(new_loss.mean())
        p_value = paired_bootstrap(old_loss, new_loss, seed=seed)
        metric, test, better = "mse", "paired-bootstrap", new <= old * (1.0 - margin)
        shown = f"candidate mse {new:.4g} does not beat champion mse {old:.4g}"
    if not better:
        reason = f"{shown} by the margin {margin}"
        return Decision(False, reason, metric, old, new, p_value, test, n)
    if p_value >= alpha:
        reason = f"the {metric} gain is not significant ({test} p={p_value:.3g} >= {alpha})"
        return Decision(False, reason, metric, old, new, p_value, test, n)
    reason = f"{metric} {old:.4g} -> {new:.4g} on {n} held-out events ({test} p={p_value:.3g})"
    return Decision(True, reason, metric, old, new, p_value, test, n)
