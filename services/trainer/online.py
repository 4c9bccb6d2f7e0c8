"""Continuous learning for River models: learn from every example, offer snapshots as candidates.

:class:`OnlineLearner` keeps a River model learning one example at a time. Each example is first
predicted, then learnt (test-then-train), so the learner's recent predictions are all made on
examples it had not yet seen: an honest hold-out that costs no data. A snapshot is judged against
the serving version on the same recent events, the learner's prequential prediction against what
the serving version actually predicted for them (the examples carry it), with the promotion gate
(:func:`services.trainer.gate.decide`).

>>> from river import linear_model
>>> learner = OnlineLearner(linear_model.LogisticRegression(), "classification", ["x"], 50)
>>> for i in range(200):
...     x = (i % 7) - 3.0
...     learner.learn({"x": x}, int(x > 0), served=int(x < 0), version=1)  # v1 is always wrong
>>> decision = learner.judge(1, margin=0.01, alpha=0.05, last=50)
>>> decision.promote, decision.n
(True, 50)
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.trainer.gate import Decision, decide
from shared.core.kinds import Task
from shared.models.algorithms import Algorithm, Scorer
from shared.models.signing import Signer
from shared.models.training import Candidate, evaluate, package


@dataclass(frozen=True)
class Seen:
    features: dict[str, float]
    label: Any
    predicted: Any
    """The learner's prediction, made before it learnt this example."""
    served: Any
    version: int | None
    ts: int


class OnlineLearner:
    def __init__(self, model: Any, task: Task, features: list[str], recent: int = 2_000) -> None:
        self.model = model
        self.task = task
        self.features = features
        self.recent: deque[Seen] = deque(maxlen=recent)
        self.learnt = 0

    def learn(
        self,
        features: dict[str, float],
        label: Any,
        *,
        served: Any = None,
        version: int | None = None,
        ts: int = 0,
    ) -> None:
        """Predict ``features`` (kept for the gate), then learn ``label``."""
        x = {name: features[name] for name in self.features if name in features}
        if len(x) < len(self.features):
            return  # an example without every feature teaches a model of this schema nothing
        predicted = self.model.predict_one(x)
        self.recent.append(Seen(x, label, predicted, served, version, ts))
        self.model.learn_one(x, label)
        self.learnt += 1

    def judge(
        self, champion: int, *, margin: float, alpha: float, last: int | None = None
    ) -> Decision | None:
        """The gate on the ``last`` most recent events the serving version ``champion`` predicted
        (all of those kept without it); None when there are none yet. The learner improves as it
        goes, so its recent predictions say more about the snapshot than its early ones."""
        mine = [s for s in self.recent if s.version == champion and s.served is not None]
        if last is not None:
            mine = mine[-last:]
        if not mine or any(s.predicted is None for s in mine):
            return None
        return decide(
            self.task,
            [s.label for s in mine],
            [s.served for s in mine],
            [s.predicted for s in mine],
            margin=margin,
            alpha=alpha,
        )

    def snapshot(
        self,
        *,
        model: str,
        algo: Algorithm,
        params: dict[str, Any],
        classes: list[Any] | None,
        signer: Signer,
        decision: Decision | None,
    ) -> Candidate:
        """A signed candidate of the model as it is now, profiled on the recent examples."""
        fitted = copy.deepcopy(self.model)
        X = np.asarray([[s.features[n] for n in self.features] for s in self.recent], dtype=float)
        scorer = Scorer(fitted, "river", self.task, self.features, classes)
        metrics = evaluate(
            self.task,
            [s.label for s in self.recent],
            [s.predicted for s in self.recent],
            None,
        )
        trained_on: dict[str, Any] = {
            "source": "examples (continuous learning)",
            "mode": "online",
            "examples": self.learnt,
            "prequential_rows": len(self.recent),
            "start_ts": self.recent[0].ts if self.recent else None,
            "end_ts": self.recent[-1].ts if self.recent else None,
        }
        if decision is not None:
            metrics[f"gate_champion_{decision.metric}"] = decision.champion
            metrics[f"gate_candidate_{decision.metric}"] = decision.candidate
            metrics["gate_p_value"] = decision.p_value
        return package(
            fitted,
            model=model,
            algo=algo,
            task=self.task,
            features=self.features,
            params=params,
            X_profile=X,
            scorer=scorer,
            metrics=metrics,
            classes=classes,
            trained_on=trained_on,
            signer=signer,
        )
