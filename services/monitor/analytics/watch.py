"""The monitor's analytics for one model: per version, rolling error, data drift, prediction drift,
concept drift, and the alerts and retrain requests they raise.

Fed by the join (:mod:`services.monitor.join`): a :class:`~services.monitor.join.Scored` event (features and prediction)
updates the drift windows, a :class:`~services.monitor.join.Joined` one (with its label) the rolling metrics
and the concept-drift detector. Every version has its own windows, detectors and gates, measured
against its own reference profile: after a promotion the new version starts from a clean slate, so
the swap itself raises nothing, and the old version's open alerts are resolved as superseded.

Pure and deterministic: time is the events' own time, alert and request ids derive from what they
are about, so a monitor that replays the same events raises the same alerts with the same ids.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np

from services.monitor.analytics.drift_window import DriftWindows
from services.monitor.join import Joined, Scored
from shared.core.kinds import Task
from shared.core.messages import AlertKind, DriftAlert, RetrainRequest, Severity
from shared.stats.alert_gate import AlertGate
from shared.stats.concept import ConceptDrift, Detection
from shared.stats.drift import SCORE, FeatureDrift, ReferenceSet
from shared.stats.profile import DistributionProfile, ReferenceProfile
from shared.stats.rolling import RollingMetrics

PERFORMANCE_EVERY = 20
"""Labelled events between two checks of the performance thresholds."""
_NUMBERS = (int, float)
LOWER_IS_BETTER = frozenset({"mse", "mae", "rmse", "log_loss"})
NAMESPACE = uuid.UUID("6f1c1d52-5f43-4c8e-9a55-6d0f3c1f7a10")


@dataclass(frozen=True)
class MonitorConfig:
    """Windows, thresholds and the false-alarm budget; the defaults suit a few hundred events/s."""

    metrics_window: int = 1_000
    metrics_period_s: float = 3_600.0
    drift_window: int = 1_000
    """Recent events per version whose features and scores are compared with the reference."""
    drift_every: int = 250
    """Test the drift window after this many new events."""
    psi_threshold: float = 0.2
    """Effect-size floor: a feature drifts when its PSI exceeds this *and* its KS test is
    significant at the budget's level."""
    false_alarms_per_million: float = 1.0
    """Budget of data/prediction-drift false alarms per million events on a stationary stream;
    sets the KS test's significance level (:meth:`ks_alpha`)."""
    detector: str = "adwin"
    concept_min_labels: int = 500
    """Labelled events a version must have before concept drift can fire (detector warm-up)."""
    performance: dict[str, float] = field(default_factory=dict)
    """Rolling metric -> threshold, e.g. ``{"accuracy": 0.8}``: alert when the count-window value
    gets worse than it (below for scores, above for errors)."""
    hysteresis: float = 0.2
    cooldown_ms: int = 600_000
    """Event time after an alert resolves before it can fire again; also how long concept drift
    stays firing after its detector's last alarm."""
    retrain_timeout_ms: int = 3_600_000
    """How long an unanswered retrain request blocks the next (event time)."""

    def ks_alpha(self, tests_per_check: int) -> float:
        """Per-test significance level that spends the false-alarm budget.

        Under no drift a KS p-value is uniform, so ``tests per million events * alpha`` bounds the
        expected false alarms per million (Bonferroni; overlapping windows make it conservative).

        >>> f"{MonitorConfig(drift_every=250, false_alarms_per_million=1.0).ks_alpha(11):.3g}"
        '2.27e-05'
        """
        checks_per_million = 1_000_000 / self.drift_every
        return self.false_alarms_per_million / (checks_per_million * max(1, tests_per_check))


@dataclass(frozen=True)
class VersionInfo:
    """What the registry says about a version that the monitor needs."""

    version: int
    task: Task
    features: list[str]
    reference: ReferenceProfile | None
    classes: list[Any] | None = None


@dataclass(frozen=True)
class Retrain:
    """Why a retrain request is due: the alert that fired, and where to train from."""

    cause: DriftAlert
    since_ts: int | None


@dataclass(frozen=True)
class Signals:
    """What one update raised."""

    alerts: list[DriftAlert] = field(default_factory=list)
    retrain: list[RetrainRequest] = field(default_factory=list)
    served: int | None = None
    """The newer version this update made the served one in place of another (a swap)."""

    def __bool__(self) -> bool:
        return bool(self.alerts or self.retrain or self.served is not None)


def _positive(info: VersionInfo) -> Any:
    classes = info.classes or []
    return classes[-1] if info.task == "classification" and len(classes) == 2 else None


def _error(task: Task, label: Any, prediction: Any) -> float:
    if task == "regression":
        return abs(float(label) - float(prediction))
    return 0.0 if label == prediction else 1.0


class VersionWatch:
    """Metrics, drift windows, detectors and gates of one model version."""

    def __init__(self, model: str, info: VersionInfo, config: MonitorConfig) -> None:
        self.model = model
        self.info = info
        self.config = config
        self.retired = False
        positive = _positive(info)
        reference = info.reference
        probabilities = bool(reference and reference.score and _in_unit_interval(reference.score))
        self.metrics = RollingMetrics(
            info.task,
            window=config.metrics_window,
            period_s=config.metrics_period_s,
            positive=positive,
            probabilities=probabilities and positive is not None,
        )
        self.windows = DriftWindows(info.features, config.drift_window)
        """Recent features and scores (the prediction, for regression) for the drift tests."""
        self.scored = 0
        self.labelled = 0
        self.scored_ts = 0
        """The latest event time observed (scored events come in event time order but for
        stragglers): alerts are stamped with it, so their times never run backwards."""
        self.learned_ts = 0
        """The latest event time learned (labelled events): a concept alert is stamped with it,
        never with the time of a late label from before the change that happened to tip the
        detector."""
        self._since_check = 0
        tests = len(info.features) + (1 if reference and reference.score else 0)
        self.alpha = config.ks_alpha(tests)
        self._references: ReferenceSet | None = None
        """The reference profiles, prepared once for the drift tests (on first use)."""
        self.drift: dict[str, FeatureDrift] = {}
        """Latest drift evidence per feature; ``"__score__"`` is the prediction's."""
        self._gates: dict[tuple[str, str | None], AlertGate] = {}
        self.firing: dict[tuple[str, str | None], DriftAlert] = {}
        self._episodes: dict[tuple[str, str | None], int] = {}
        self.concept = ConceptDrift(config.detector)
        if self.concept.binary_only and info.task != "classification":
            raise ValueError(f"detector {config.detector!r} needs 0/1 errors: classification only")
        self._concept_last: int | None = None
        self.last_detection: Detection | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_references"]  # derived from the reference profile: prepared again on demand
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("_sorted", None)  # what older checkpoints cached instead
        if "features" in state:  # older checkpoints kept a deque per variable
            features, scores = state.pop("features"), state.pop("scores")
            windows = DriftWindows(features, state["config"].drift_window)
            windows.restore(features, scores)
            state["windows"] = windows
        state.setdefault("scored_ts", 0)  # older checkpoints stamped alerts with each event's time
        state.setdefault("learned_ts", state.get("_concept_last") or 0)
        self.__dict__.update(state)
        self._references = None

    # ---- data and prediction drift (no labels needed) --------------------------------------

    def observe(self, event: Scored) -> list[DriftAlert]:
        self.scored += 1
        self.scored_ts = max(self.scored_ts, event.ts)
        watched = event.prediction if self.info.task == "regression" else event.score
        if isinstance(watched, _NUMBERS) and not isinstance(watched, bool):
            self.windows.add(event.features, float(watched))
        else:
            self.windows.add(event.features, None)
        self._since_check += 1
        if self._since_check < self.config.drift_every or self.retired:
            return []
        self._since_check = 0
        return self._check_drift(self.scored_ts)

    def _check_drift(self, ts: int) -> list[DriftAlert]:
        reference = self.info.reference
        if reference is None:
            return []
        alerts: list[DriftAlert] = []
        window = self.config.drift_window
        windows = self.windows
        tested: dict[str, np.ndarray] = {}
        for name in windows.names:
            values = windows.values(name)
            if name in reference.features and values.size >= window:
                tested[name] = values
        scores = windows.scores()
        if reference.score is not None and scores.size >= window:
            tested[SCORE] = scores
        if not tested:
            return []
        found = self._reference_set(reference).compare(tested)
        score = found.pop(SCORE, None)
        self.drift.update(found)
        ranking = self._ranking()
        for name in windows.names:
            evidence = self.drift.get(name)
            if evidence is None:
                continue
            alert = self._drift_gate("data_drift", name, evidence, windows.count(name), ts)
            if alert is not None:
                alerts.append(self._describe_data_drift(alert, evidence, ranking))
        if score is not None:
            evidence = self.drift[SCORE] = dataclasses.replace(score, feature="prediction")
            alert = self._drift_gate("prediction_drift", None, evidence, scores.size, ts)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _reference_set(self, reference: ReferenceProfile) -> ReferenceSet:
        if self._references is None:
            profiles = dict(reference.features)
            if reference.score is not None:
                profiles[SCORE] = reference.score
            self._references = ReferenceSet(profiles)
        return self._references

    def _ranking(self) -> list[str]:
        """Features drifting now (significant and past the PSI floor), largest effect first."""
        drifting = [
            d
            for name, d in self.drift.items()
            if name != SCORE and self._drift_statistic(d) > self.config.psi_threshold
        ]
        drifting.sort(key=lambda d: (d.mean_shift, d.psi), reverse=True)
        return [d.feature for d in drifting]

    def _drift_statistic(self, evidence: FeatureDrift) -> float:
        """The PSI when the KS test is significant at the budget's level, else 0."""
        return evidence.psi if evidence.p_value < self.alpha else 0.0

    def _drift_gate(
        self, kind: AlertKind, feature: str | None, evidence: FeatureDrift, samples: int, ts: int
    ) -> DriftAlert | None:
        gate = self._gate(kind, feature, self.config.psi_threshold, self.config.drift_window)
        statistic = self._drift_statistic(evidence)
        subject = f"feature {feature}" if feature else "the prediction distribution"
        message = (
            f"{subject} drifted: PSI {evidence.psi:.3f} > {self.config.psi_threshold}, "
            f"KS {evidence.ks:.3f} (p={evidence.p_value:.2g} < {self.alpha:.2g}), mean shift "
            f"{evidence.mean_shift:.2f} sd, over the last {samples} events"
        )
        severity: Severity = (
            "critical" if evidence.psi > 2 * self.config.psi_threshold else "warning"
        )
        return self._transition(
            gate.update(statistic, samples=samples, ts_ms=ts),
            kind=kind,
            feature=feature,
            detector="psi+ks",
            statistic=evidence.psi,
            threshold=self.config.psi_threshold,
            window=samples,
            severity=severity,
            message=message,
            ts=ts,
        )

    def _describe_data_drift(
        self, alert: DriftAlert, evidence: FeatureDrift, ranking: list[str]
    ) -> DriftAlert:
        if alert.state != "firing" or alert.feature not in ranking:
            return alert
        rank = ranking.index(alert.feature) + 1
        message = f"{alert.message}; rank {rank} of {len(ranking)} drifting: {', '.join(ranking)}"
        updated = _replace(alert, message=message)
        self.firing[("data_drift", alert.feature)] = updated
        return updated

    # ---- rolling error, performance and concept drift (labels) ----------------------------

    def learn(self, joined: Joined) -> tuple[list[DriftAlert], Retrain | None]:
        """Add one labelled event; return the alerts raised and, when a concept-drift or
        performance alert fired, what a retrain request should say."""
        self.labelled += 1
        self.metrics.update(joined.label, joined.prediction, joined.score, ts_ms=joined.ts)
        self.learned_ts = max(self.learned_ts, joined.ts)
        now = self.learned_ts
        if self.retired:
            return [], None
        alerts: list[DriftAlert] = []
        error = _error(self.info.task, joined.label, joined.prediction)
        detection = self.concept.update(error, joined.ts)
        fired: Retrain | None = None
        key = ("concept_drift", None)
        if detection is not None and self.labelled >= self.config.concept_min_labels:
            self._concept_last = now
            self.last_detection = detection
            if key not in self.firing:
                alert = self._transition(
                    "fire",
                    kind="concept_drift",
                    feature=None,
                    detector=self.concept.name,
                    statistic=detection.after,
                    threshold=detection.before,
                    window=detection.at,
                    severity="critical",
                    message=(
                        f"error rose from {detection.before:.3g} to {detection.after:.3g} "
                        f"({self.concept.name}); the change began at ts {detection.since_ts}, "
                        f"detected at labelled event {detection.at}"
                    ),
                    ts=now,
                )
                if alert is not None:
                    alerts.append(alert)
                    fired = Retrain(alert, detection.since_ts)
        elif (
            key in self.firing
            and self._concept_last is not None
            and now - self._concept_last >= self.config.cooldown_ms
        ):
            alert = self._transition("resolve", kind="concept_drift", feature=None, ts=now)
            if alert is not None:
                alerts.append(alert)
        performance = self._check_performance(now)
        alerts.extend(performance)
        breach = next((a for a in performance if a.state == "firing"), None)
        if fired is None and breach is not None:
            # Train after the last detected change if there was one, else on the whole window.
            since = self.last_detection.since_ts if self.last_detection else None
            fired = Retrain(breach, since)
        return alerts, fired

    def _check_performance(self, ts: int) -> list[DriftAlert]:
        # Every PERFORMANCE_EVERY labels: some metrics (ROC AUC) cost more to read than to update.
        if not self.config.performance or self.labelled % PERFORMANCE_EVERY:
            return []
        alerts = []
        for metric, threshold in self.config.performance.items():
            try:
                value = self.metrics.value(metric)
            except KeyError:
                continue  # a metric this task does not have (validated when the monitor starts)
            if value is None or not math.isfinite(value):
                continue
            direction: Literal["above", "below"] = "above" if metric in LOWER_IS_BETTER else "below"
            gate = self._gate(
                "performance", metric, threshold, self.config.metrics_window, direction
            )
            word = "above" if direction == "above" else "below"
            alert = self._transition(
                gate.update(value, samples=self.metrics.count, ts_ms=ts),
                kind="performance",
                feature=metric,
                detector=f"rolling-{metric}",
                statistic=value,
                threshold=threshold,
                window=self.metrics.count,
                severity="critical",
                message=(
                    f"rolling {metric} {value:.4g} is {word} its threshold {threshold} over the "
                    f"last {self.metrics.count} labelled events"
                ),
                ts=ts,
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    # ---- alerts --------------------------------------------------------------------------

    def _gate(
        self,
        kind: str,
        feature: str | None,
        threshold: float,
        min_samples: int,
        direction: Literal["above", "below"] = "above",
    ) -> AlertGate:
        key = (kind, feature)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = AlertGate(
                threshold,
                hysteresis=self.config.hysteresis,
                min_samples=min_samples,
                cooldown_ms=self.config.cooldown_ms,
                direction=direction,
            )
        return gate

    def _transition(
        self,
        transition: str | None,
        *,
        kind: AlertKind,
        feature: str | None,
        ts: int,
        detector: str = "",
        statistic: float = 0.0,
        threshold: float = 0.0,
        window: int = 0,
        severity: Severity = "warning",
        message: str = "",
    ) -> DriftAlert | None:
        key = (kind, feature)
        if transition == "fire":
            episode = self._episodes.get(key, 0) + 1
            self._episodes[key] = episode
            alert = DriftAlert(
                alert_id=str(
                    uuid.uuid5(
                        NAMESPACE,
                        f"{self.model}/{self.info.version}/{kind}/{feature}/{episode}",
                    )
                ),
                ts=ts,
                model=self.model,
                version=self.info.version,
                kind=kind,
                state="firing",
                detector=detector,
                feature=feature,
                statistic=_finite(statistic),
                threshold=_finite(threshold),
                window=window,
                severity=severity,
                message=message,
            )
            self.firing[key] = alert
            return alert
        if transition == "resolve" and key in self.firing:
            return self.resolve(key, ts, statistic=statistic if detector else None)
        return None

    def resolve(
        self, key: tuple[str, str | None], ts: int, *, statistic: float | None = None, why: str = ""
    ) -> DriftAlert:
        """The resolved form of a firing alert (same ``alert_id``)."""
        fired = self.firing.pop(key)
        reason = why or "back within its threshold"
        return _replace(
            fired,
            state="resolved",
            ts=ts,
            statistic=_finite(fired.statistic if statistic is None else statistic),
            message=f"resolved: {reason} ({fired.message})",
        )

    def retire(self, ts: int, successor: int) -> list[DriftAlert]:
        """This version is no longer served: resolve its open alerts, raise no new ones."""
        self.retired = True
        return [
            self.resolve(key, ts, why=f"v{self.info.version} superseded by v{successor}")
            for key in list(self.firing)
        ]

    def summary(self) -> dict[str, Any]:
        """Metrics, drift and open alerts, for `driftline status` and the metrics endpoint."""
        top = sorted(
            (d for n, d in self.drift.items() if n != SCORE),
            key=lambda d: (self._drift_statistic(d) > self.config.psi_threshold, d.psi),
            reverse=True,
        )
        return {
            "version": self.info.version,
            "retired": self.retired,
            "scored": self.scored,
            "labelled": self.labelled,
            "metrics": self.metrics.values(),
            "metrics_time_window": self.metrics.time_values(),
            "window": self.metrics.count,
            "drift": [
                {
                    "feature": d.feature,
                    "psi": d.psi,
                    "ks": d.ks,
                    "p_value": d.p_value,
                    "mean_shift": d.mean_shift,
                    "drifting": self._drift_statistic(d) > self.config.psi_threshold,
                }
                for d in top[:5]
            ],
            "prediction_drift": (
                None
                if SCORE not in self.drift
                else {"psi": self.drift[SCORE].psi, "ks": self.drift[SCORE].ks}
            ),
            "firing": [f"{kind}:{feature}" if feature else kind for kind, feature in self.firing],
        }


class ModelWatch:
    """All versions of one model, and its retrain requests."""

    def __init__(
        self, model: str, config: MonitorConfig, describe: Callable[[int], VersionInfo]
    ) -> None:
        self.model = model
        self.config = config
        self.describe: Callable[[int], VersionInfo] | None = describe
        self.versions: dict[int, VersionWatch] = {}
        self.current: int | None = None
        self.outstanding: tuple[str, int] | None = None
        """``(request_id, ts)`` of the retrain request not yet answered by a new version."""
        self._requests = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["describe"] = None  # a registry lookup: the restoring monitor supplies its own
        return state

    def _version(self, version: int, ts: int, alerts: list[DriftAlert]) -> VersionWatch:
        watch = self.versions.get(version)
        if watch is None:
            if self.describe is None:
                raise RuntimeError("ModelWatch.describe is unset (restored from a checkpoint?)")
            watch = self.versions[version] = VersionWatch(
                self.model, self.describe(version), self.config
            )
            if self.current is not None and version < self.current:
                watch.retired = True  # a straggler from before a swap
        if self.current is None or version > self.current:
            if self.current is not None:
                for old in self.versions.values():
                    if old.info.version < version and not old.retired:
                        alerts.extend(old.retire(ts, version))
                self.outstanding = None  # a new version answers the open retrain request
            self.current = version
        return watch

    def observe(self, event: Scored) -> Signals:
        alerts: list[DriftAlert] = []
        watch = self._version(event.version, event.ts, alerts)
        alerts.extend(watch.observe(event))
        return Signals(alerts=alerts)

    def learn(self, joined: Joined) -> Signals:
        alerts: list[DriftAlert] = []
        watch = self._version(joined.version, joined.ts, alerts)
        raised, due = watch.learn(joined)
        alerts.extend(raised)
        return self._learned(watch, alerts, due)

    def _learned(
        self, watch: VersionWatch, alerts: list[DriftAlert], due: Retrain | None
    ) -> Signals:
        retrain: list[RetrainRequest] = []
        if due is not None and self._may_request(watch.learned_ts):
            retrain.append(self._request(watch, due, watch.learned_ts))
        return Signals(alerts=alerts, retrain=retrain)

    def feed(self, items: Iterable[Scored | Joined]) -> list[Signals]:
        """:meth:`observe` each scored event and :meth:`learn` each joined one, in order; return
        the signals of those that raised something or swapped in a newer version (``served``).

        The monitor's way in: an event of a version already known and not newer than the served
        one goes straight to that version's watch, and nothing is built for an event that raises
        nothing (each event passes through here twice: scored, then joined).
        """
        raised: list[Signals] = []
        versions = self.versions
        for item in items:
            current = self.current
            watch = versions.get(item.version)
            if watch is None or current is None or item.version > current:
                signals = self.observe(item) if isinstance(item, Scored) else self.learn(item)
                if current is not None and self.current != current:
                    signals = dataclasses.replace(signals, served=self.current)
                if signals:
                    raised.append(signals)
            elif isinstance(item, Scored):
                alerts = watch.observe(item)
                if alerts:
                    raised.append(Signals(alerts=alerts))
            else:
                found, due = watch.learn(item)
                if found or due is not None:
                    raised.append(self._learned(watch, found, due))
        return raised

    def _may_request(self, ts: int) -> bool:
        if self.outstanding is None:
            return True
        return ts - self.outstanding[1] >= self.config.retrain_timeout_ms

    def _request(self, watch: VersionWatch, due: Retrain, ts: int) -> RetrainRequest:
        self._requests += 1
        request_id = str(
            uuid.uuid5(NAMESPACE, f"{self.model}/{watch.info.version}/retrain/{self._requests}")
        )
        self.outstanding = (request_id, ts)
        return RetrainRequest(
            request_id=request_id,
            ts=ts,
            model=self.model,
            reason=f"{due.cause.kind} on v{watch.info.version}: {due.cause.message}",
            since_ts=due.since_ts,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "current_version": self.current,
            "retrain_outstanding": None if self.outstanding is None else self.outstanding[0],
            "versions": [self.versions[v].summary() for v in sorted(self.versions, reverse=True)],
        }


def _in_unit_interval(profile: DistributionProfile) -> bool:
    return (
        bool(profile.quantiles) and min(profile.quantiles) >= 0.0 and max(profile.quantiles) <= 1.0
    )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _replace(alert: DriftAlert, **changes: Any) -> DriftAlert:
    return msgspec.structs.replace(alert, **changes)
