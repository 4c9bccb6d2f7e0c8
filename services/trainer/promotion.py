"""Every registry write the trainer makes, each announced on ``model-events``, with its lineage.

A candidate that won its gate is registered and promoted (``registered`` then ``promoted``); one
that lost is registered as ``rejected`` with both scores and the reason; a version the rollback
guard caught is rolled back (``rolled_back``, with both live losses). The lineage a version keeps
(``driftline models show``) gains the topic it was trained from and the gate's evidence.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.trainer.metrics import TrainerMetrics
from services.trainer.requests import Handled
from services.trainer.retraining import Outcome
from services.trainer.rollback_guard import Verdict
from shared.core.errors import DriftlineError, ModelNotFound
from shared.models.version import ModelVersion
from shared.registry.events import ModelEvents
from shared.registry.store import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What :meth:`Promotion.apply` did."""

    handled: Handled
    promoted: ModelVersion | None = None
    """The version now served, when the outcome promoted one."""
    parent: int | None = None
    """The version it replaced."""


class Promotion:
    """Registers, promotes, rejects and rolls back one model's versions."""

    def __init__(
        self,
        *,
        model: str,
        registry: Registry,
        events: ModelEvents,
        examples_topic: str,
        metrics: TrainerMetrics,
        leading: Callable[[], bool],
    ) -> None:
        self.model = model
        self._registry = registry
        self._events = events
        self._examples_topic = examples_topic
        self._metrics = metrics
        self._leading = leading
        """Whether this trainer still holds the leader lock (asked before promoting)."""

    def apply(self, outcome: Outcome, parent: int | None) -> Applied:
        """Register, promote or reject as ``outcome`` says, ``parent`` being the version served."""
        self._metrics.outcomes.labels(self.model, outcome.kind).inc()
        candidate = outcome.candidate
        if candidate is None:  # failed
            log.error("retrain for %s failed: %s", self.model, outcome.reason)
            return Applied(Handled(outcome=outcome.kind, reason=outcome.reason))
        lineage: dict[str, Any] = {"topic": self._examples_topic}
        decision = outcome.decision
        if decision is not None:
            lineage["gate"] = {
                "reason": decision.reason,
                "metric": decision.metric,
                "champion": decision.champion,
                "candidate": decision.candidate,
                "p_value": decision.p_value,
                "test": decision.test,
                "holdout": decision.n,
            }
        candidate = dataclasses.replace(candidate, trained_on={**candidate.trained_on, **lineage})
        rejected = outcome.kind == "reject"
        record = self._registry.register(
            candidate, parent=parent, status="rejected" if rejected else "registered"
        )
        handled = Handled(outcome=outcome.kind, reason=outcome.reason, version=record.version)
        if rejected:
            self._events.publish(
                self.model, record.version, "rejected", candidate.metrics, reason=outcome.reason
            )
            log.warning("%s v%d rejected: %s", self.model, record.version, outcome.reason)
            return Applied(handled)
        self._events.publish(self.model, record.version, "registered", candidate.metrics)
        if not self._leading():
            log.warning(
                "lost the leader lock before promoting %s v%d; it stays registered",
                self.model,
                record.version,
            )
            return Applied(dataclasses.replace(handled, outcome="registered"))
        self._registry.promote(self.model, record.version)
        self._events.publish(
            self.model, record.version, "promoted", candidate.metrics, reason=outcome.reason
        )
        log.warning("%s v%d promoted: %s", self.model, record.version, outcome.reason)
        return Applied(handled, promoted=record, parent=parent)

    def roll_back(self, verdict: Verdict) -> Handled | None:
        """Roll back the version the guard caught, if it is still the one served."""
        try:
            active = self._registry.active(self.model)
            if active != verdict.version:
                log.info(
                    "rollback guard: v%d is no longer active; nothing to roll back", verdict.version
                )
                return None
            change = self._registry.rollback(self.model)
        except (ModelNotFound, DriftlineError) as exc:
            log.error("rollback guard could not roll back %s: %s", self.model, exc)
            return None
        metrics = {"live_loss": verdict.loss}
        if verdict.predecessor_loss is not None:
            metrics["predecessor_live_loss"] = verdict.predecessor_loss
        self._events.publish(
            self.model, change.current, "rolled_back", metrics, reason=verdict.reason
        )
        self._metrics.outcomes.labels(self.model, "rolled_back").inc()
        log.warning(
            "%s rolled back from v%d to v%d: %s",
            self.model,
            verdict.version,
            change.current,
            verdict.reason,
        )
        return Handled(outcome="rolled_back", version=change.current)
