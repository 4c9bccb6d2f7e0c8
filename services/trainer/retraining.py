"""What the trainer does with a retrain request, as a plain function of its inputs.

:func:`retrain` cuts the training set from the example window (post-change rows when the request
says where the change began), fits a candidate on its older part, scores the candidate and the
champion on the same most recent held-out slice, and lets the promotion gate
(:func:`services.trainer.gate.decide`) judge. With no champion (a first model) the candidate is
promoted without a gate. Too few examples is not an error: the outcome says how many are missing,
and the trainer asks again as more arrive. Side effects (registering, promoting, publishing) belong
to the service.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from services.trainer.gate import Decision, decide
from services.trainer.window import ExampleWindow
from shared.core.errors import ConfigError
from shared.core.kinds import Task
from shared.models.algorithms import algorithm
from shared.models.serving import ServingModel
from shared.models.signing import Signer
from shared.models.training import Candidate, split_point, train

log = logging.getLogger(__name__)

OutcomeKind = Literal["waiting", "bootstrap", "promote", "reject", "failed"]


@dataclass(frozen=True)
class TrainerConfig:
    """How the trainer fits and judges candidates (``DRIFTLINE_TRAINER_*``)."""

    algorithm: str = "logistic"
    params: dict[str, Any] = field(default_factory=dict)
    task: Task | None = None
    min_examples: int = 500
    holdout: float = 0.25
    margin: float = 0.01
    alpha: float = 0.05
    online_snapshot_s: float = 0.0
    """River algorithms: learn from every example and judge a snapshot this often (0: off)."""

    @property
    def online(self) -> bool:
        return self.online_snapshot_s > 0 and algorithm(self.algorithm).family == "river"

    def __post_init__(self) -> None:
        try:
            algorithm(self.algorithm)  # an unknown name fails here, at startup
        except ValueError as exc:
            raise ConfigError(f"DRIFTLINE_TRAINER_ALGORITHM: {exc}") from None
        if self.min_examples < 10:
            raise ConfigError("the trainer needs at least 10 examples to train and hold out")
        split_point(self.min_examples, self.holdout)


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str
    candidate: Candidate | None = None
    decision: Decision | None = None
    examples: int = 0


def preload() -> None:
    """Import what training, judging and loading artifacts need (scikit-learn, skops, river): it
    takes seconds, which a trainer should spend at start-up, not while a request waits."""
    import river.linear_model  # noqa: F401, PLC0415
    import sklearn.linear_model  # noqa: PLC0415
    import sklearn.metrics  # noqa: PLC0415
    import sklearn.svm  # noqa: F401, PLC0415
    import skops.io  # noqa: F401, PLC0415


def retrain(
    window: ExampleWindow,
    *,
    model: str,
    config: TrainerConfig,
    signer: Signer,
    champion: ServingModel | None,
    request_id: str | None,
    since_ts: int | None,
) -> Outcome:
    """Train a candidate for ``model`` from ``window`` and judge it against ``champion``."""
    # A retrained version keeps its champion's schema: the same features, of the same kinds.
    schema = champion.schema if champion else window.schema()
    if not schema.features:
        return Outcome("waiting", "no feature is common to every example in the window yet")
    selection = window.select(schema, since_ts)
    data = selection.data
    where = "" if since_ts is None else f" at or after the change (event time {since_ts})"
    if len(data) < config.min_examples:
        return Outcome(
            "waiting",
            f"{len(data)} of the {config.min_examples} examples needed{where}; waiting for more",
            examples=len(data),
        )
    task: Task | None = champion.task if champion else config.task
    try:
        candidate = train(
            data,
            model=model,
            algo=algorithm(config.algorithm),
            signer=signer,
            task=task,
            params=config.params,
            holdout=config.holdout,
            source="examples",
        )
    except ConfigError as exc:
        return Outcome("failed", f"training failed: {exc}", examples=len(data))
    trained_on = {**candidate.trained_on, **selection.lineage, "request_id": request_id}
    candidate = dataclasses.replace(candidate, trained_on=trained_on)
    if champion is None:
        return Outcome(
            "bootstrap",
            f"first version: {config.algorithm} on {len(data)} examples",
            candidate,
            examples=len(data),
        )
    n_train = split_point(len(data), config.holdout)
    X_test, y_test = data.X[n_train:], data.y[n_train:]
    assert candidate.scorer is not None  # noqa: S101 - train() always sets it
    candidate_says, _ = candidate.scorer.score(X_test)
    champion_says, _ = champion.score(X_test)
    decision = decide(
        candidate.task,
        y_test,
        champion_says,
        candidate_says,
        margin=config.margin,
        alpha=config.alpha,
    )
    metrics = {
        **candidate.metrics,
        f"gate_champion_{decision.metric}": decision.champion,
        f"gate_candidate_{decision.metric}": decision.candidate,
        "gate_p_value": decision.p_value,
        "gate_holdout": float(decision.n),
    }
    candidate = dataclasses.replace(candidate, metrics=metrics)
    kind: OutcomeKind = "promote" if decision.promote else "reject"
    return Outcome(kind, decision.reason, candidate, decision, examples=len(data))
