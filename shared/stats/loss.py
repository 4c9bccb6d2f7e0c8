"""Per-event loss, in the two meanings driftline uses, so that each is written once.

- :func:`event_error` is the error stream a concept-drift detector watches: 0/1 for a classifier,
  the absolute error for a regressor (on the label's scale, so a detector's thresholds hold).
- :func:`event_loss` (and :func:`event_losses` for arrays) is what a version is judged by, the
  loss whose mean is the accuracy's complement or the MSE: 0/1, or the squared error.

>>> event_error("regression", 3.0, 1.5), event_loss("regression", 3.0, 1.5)
(1.5, 2.25)
>>> event_error("classification", "a", "b"), event_loss("classification", 1, 1)
(1.0, 0.0)
>>> event_losses("regression", [1.0, 2.0], [1.0, 4.0]).tolist()
[0.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.core.kinds import Task


def event_error(task: Task | str, label: Any, prediction: Any) -> float:
    """0/1 for a wrong class, or the absolute error of a regression."""
    if task == "regression":
        return abs(float(label) - float(prediction))
    return 0.0 if label == prediction else 1.0


def event_loss(task: Task | str, label: Any, prediction: Any) -> float:
    """0/1 for a wrong class, or the squared error of a regression."""
    if task == "regression":
        return (float(prediction) - float(label)) ** 2
    return 0.0 if prediction == label else 1.0


def event_losses(
    task: Task | str, labels: Sequence[Any], predictions: Sequence[Any]
) -> NDArray[np.float64]:
    """:func:`event_loss` of each pair, as one array."""
    if task == "regression":
        truth = np.array([float(t) for t in labels])
        guess = np.array([float(p) for p in predictions])
        return np.asarray((truth - guess) ** 2, dtype=float)
    return np.array([float(p != t) for t, p in zip(labels, predictions, strict=True)])
