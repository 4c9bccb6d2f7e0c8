"""Continuous learning for River models: learn from every example, offer snapshots as candidates.

:class:`OnlineLearner` keeps a River model learning one example at a time. Each example is first
predicted, then learnt (test-then-train), so the learner's recent predictions are all made on
examples it had not yet seen: an honest hold-out that costs no data. A snapshot is judged against
the serving version on the same recent events, the learner's prequential prediction against what
the serving version actually predicted for them (the examples carry it), with the promotion gate
(:func:`services.trainer.gate.decide`).

>>> from river import linear_model
>>> from shared.core.schema import numeric_schema
>>> learner = OnlineLearner(
...     linear_model.LogisticRegression(), "classification", numeric_schema(["x"]), 50)
>>> for i in range(200):
...     x = (i % 7) - 3.0
...     learner.learn({"x": x}, int(x > 0), served=int(x < 0), version=1)  # v1 is always wrong
>>> decision = learner.judge(1, margin=0.01, alpha=0.05, last=50)
>>> decision.promote, decision.n
(True, 50)
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from services.trainer.gate import Decision, decide
from services.trainer.metrics import TrainerMetrics
from services.trainer.retraining import Outcome, TrainerConfig
from services.trainer.window import ExampleWindow
from shared.core.errors import BadMessage
from shared.core.kinds import Task
from shared.core.messages import Example
from shared.core.schema import Schema, Value
from shared.models.algorithms import Algorithm, Scorer, algorithm, build, river_rows
from shared.models.serving import ServingModel
from shared.models.signing import Signer
from shared.models.training import Candidate, evaluate, package
from shared.registry.store import Registry

log = logging.getLogger(__name__)

REPLAY_ON_START = 10_000
"""Examples from the window a new continuous learner learns first (seconds of River time)."""


@dataclass(frozen=True)
class Seen:
    features: list[Value]
    """The example's checked values, in the schema's order."""
    label: Any
    predicted: Any
    """The learner's prediction, made before it learnt this example."""
    served: Any
    version: int | None
    ts: int


class OnlineLearner:
    def __init__(self, model: Any, task: Task, schema: Schema, recent: int = 2_000) -> None:
        self.model = model
        self.task = task
        self.schema = schema
        self.features = schema.names
        self.recent: deque[Seen] = deque(maxlen=recent)
        self.learnt = 0

    def learn(
        self,
        features: Mapping[str, Any],
        label: Any,
        *,
        served: Any = None,
        version: int | None = None,
        ts: int = 0,
    ) -> None:
        """Predict ``features`` (kept for the gate), then learn ``label``."""
        try:
            row = self.schema.row(features)
        except BadMessage:
            return  # an example that does not fit the schema teaches its model nothing
        [x] = river_rows(self.features, self.schema.matrix([row]))
        predicted = self.model.predict_one(x)
        self.recent.append(Seen(row, label, predicted, served, version, ts))
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
        X = self.schema.matrix([s.features for s in self.recent])
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
            schema=self.schema,
            params=params,
            X_profile=X,
            scorer=scorer,
            metrics=metrics,
            classes=classes,
            trained_on=trained_on,
            signer=signer,
        )


class ContinuousLearning:
    """The leader's continuous learner and its snapshot schedule (River algorithms only).

    On schedule (:meth:`snapshot`): start a learner from the serving version, which first learns
    the window's last ``replay`` examples; later, judge it against that version on the same
    recent events, and offer it as a candidate when it wins. A snapshot that does not win is
    logged, not registered (the registry would fill with them).
    """

    def __init__(
        self,
        *,
        model: str,
        config: TrainerConfig,
        registry: Registry,
        signer: Signer,
        window: ExampleWindow,
        metrics: TrainerMetrics,
        replay: int = REPLAY_ON_START,
    ) -> None:
        self.model = model
        self._metrics = metrics
        self._config = config
        self._registry = registry
        self._signer = signer
        self._window = window
        self._replay = replay
        self.learner: OnlineLearner | None = None
        self._version: int | None = None

    def reset(self) -> None:
        """Another version is served, or leadership changed hands: start again from it."""
        self.learner = None

    def learn(self, example: Example) -> None:
        if self.learner is not None:
            self.learner.learn(
                example.features,
                example.label,
                served=example.prediction,
                version=example.version,
                ts=example.ts,
            )

    def snapshot(self, champion: ServingModel) -> Outcome | None:
        """A winning snapshot as an outcome to apply (``promote``), else None."""
        config = self._config
        if self.learner is None or self._version != champion.version:
            self._start(champion)
            return None
        learner = self.learner
        if learner.learnt < config.min_examples:
            return None
        decision = learner.judge(
            champion.version,
            margin=config.margin,
            alpha=config.alpha,
            last=max(100, int(config.min_examples * config.holdout)),
        )
        if decision is None:
            return None
        if not decision.promote:
            log.info("continuous-learning snapshot not promoted: %s", decision.reason)
            self._metrics.outcomes.labels(self.model, "snapshot_kept").inc()
            return None
        record = self._registry.get(self.model, champion.version)
        candidate = learner.snapshot(
            model=self.model,
            algo=algorithm(config.algorithm),
            params=config.params,
            classes=record.classes,
            signer=self._signer,
            decision=decision,
        )
        reason = f"continuous learning: {decision.reason}"
        return Outcome("promote", reason, candidate, decision, learner.learnt)

    def _start(self, champion: ServingModel) -> None:
        model, schema = self._start_model(champion)
        learner = self.learner = OnlineLearner(
            model, champion.task, schema, recent=max(self._config.min_examples, 2_000)
        )
        self._version = champion.version
        replay = self._window.examples()[-self._replay :]
        for stored in replay:
            learner.learn(
                stored.features,
                stored.label,
                served=stored.prediction,
                version=stored.version,
                ts=stored.ts,
            )
        log.info(
            "continuous learning for %s starts from v%d (learnt the window's last %d examples)",
            self.model,
            champion.version,
            len(replay),
        )

    def _start_model(self, champion: ServingModel) -> tuple[Any, Schema]:
        """The serving version itself when it is a model of the configured River algorithm (it
        goes on learning, on its own schema), else a fresh one with the champion's features
        behind the preprocessing that imputes."""
        record = self._registry.get(self.model, champion.version)
        if champion.scorer.family == "river" and record.algorithm == self._config.algorithm:
            return copy.deepcopy(champion.scorer.model), champion.schema
        schema = msgspec.structs.replace(champion.schema, missing=True)
        algo = algorithm(self._config.algorithm)
        return build(algo, champion.task, self._config.params, schema), schema
