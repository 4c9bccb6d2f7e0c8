"""The analytics of one model version: rolling error, data, prediction and concept drift.

A :class:`~services.monitor.join.Scored` event (features and prediction) updates the drift windows;
a :class:`~services.monitor.join.Joined` one (with its label) the rolling metrics and the
concept-drift detector. Each check hands its statistic to the version's
:class:`~services.monitor.analytics.alerts.AlertBook`, which decides whether an alert fires or
resolves. Everything is measured against the version's own reference profile.

Pure and deterministic: time is the events' own time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import msgspec
import numpy as np

from services.monitor.analytics.alerts import (
    AlertBook,
    BookState,
    Evidence,
    book_state,
    restore_book,
)
from services.monitor.analytics.config import MonitorConfig, VersionInfo
from services.monitor.analytics.drift_window import (
    CategoryWindows,
    CategoryWindowsState,
    DriftWindows,
    WindowsState,
)
from services.monitor.join import Joined, Scored
from services.monitor.status import (
    FeatureDriftStatus,
    FeatureQualityStatus,
    PredictionDriftStatus,
    VersionStatus,
)
from shared.core.messages import AlertKind, DriftAlert, Severity
from shared.stats.concept import (
    ConceptDrift,
    ConceptState,
    Detection,
    concept_state,
    restore_concept,
)
from shared.stats.drift import SCORE, FeatureDrift, ReferenceSet, category_drift
from shared.stats.loss import event_error
from shared.stats.profile import DistributionProfile, ReferenceProfile
from shared.stats.quality import FeatureQuality, category_quality, numeric_quality
from shared.stats.rolling import RollingMetrics, RollingState, restore_rolling, rolling_state

PERFORMANCE_EVERY = 20
"""Labelled events between two checks of the performance thresholds."""
_NUMBERS = (int, float)
LOWER_IS_BETTER = frozenset({"mse", "mae", "rmse", "log_loss"})
CONCEPT: tuple[AlertKind, None] = ("concept_drift", None)
PREDECESSOR: tuple[AlertKind, str] = ("performance", "error_vs_predecessor")
WORSE_RATIO = 1.5
"""A version whose error is over 1.5 times its predecessor's (and, for a classifier, at least
:data:`WORSE_POINTS` higher) after its first labels raises a performance alert, with no
threshold configured: a version bad from its first label has no change for a detector to find."""
WORSE_POINTS = 0.05
RECOVERY_LABELS = 100
"""Labels of events after a detection before their error level can read as recovered."""


@dataclass(frozen=True)
class Retrain:
    """Why a retrain request is due: the alert that fired, and where to train from."""

    cause: DriftAlert
    since_ts: int | None
    supersedes: bool = False
    """A later change than the one the outstanding request is about: it needs its own request."""


def _positive(info: VersionInfo) -> Any:
    classes = info.classes or []
    return classes[-1] if info.task == "classification" and len(classes) == 2 else None


def windowed(info: VersionInfo) -> list[str]:
    """The features whose recent values are kept for the drift tests: those the reference
    profiles as numbers (a category has no distribution profile to test against yet)."""
    if info.reference is None:
        return list(info.features)
    return [name for name in info.features if name in info.reference.features]


class VersionWatch:
    """Metrics, drift windows, the concept detector and the alert book of one model version."""

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
        self.windows = DriftWindows(windowed(info), config.drift_window)
        self.categories = CategoryWindows(
            list(reference.categories) if reference else [], config.drift_window
        )
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
        self.quality: dict[str, FeatureQuality] = {}
        """Latest data-quality shares per feature."""
        """Latest drift evidence per feature; ``"__score__"`` is the prediction's."""
        self.alerts = AlertBook(
            model, info.version, hysteresis=config.hysteresis, cooldown_ms=config.cooldown_ms
        )
        self.concept = ConceptDrift(config.detector)
        if self.concept.binary_only and info.task != "classification":
            raise ValueError(f"detector {config.detector!r} needs 0/1 errors: classification only")
        self._concept_last: int | None = None
        self.last_detection: Detection | None = None
        self._init_levels()

    def _init_levels(self) -> None:
        """What is kept to judge a version's first labels (absent from older checkpoints)."""
        self.first_labels = max(100, self.config.concept_min_labels)
        """How many labels a version's start is judged on: its early change, its predecessor."""
        self.error_level: float | None = None
        """Exponentially weighted mean of the per-event error, over about ``first_labels``."""
        self._first_sum = 0.0
        self._early: Detection | None = None
        """A change found in the first ``concept_min_labels`` labels, judged when they are in."""
        self._early_sum = 0.0
        self._early_n = 0
        self.predecessor: tuple[int, float] | None = None
        """The version this one replaced and its error level then, when it had one."""
        self._recovered = False
        """Whether the error level came back nearer the level before the last detected change
        than the level it rose to: only then is a new detection a later change."""
        self._after: tuple[int, float] = (0, 0.0)
        """Since the last detection: how many labelled events later than it were seen, and a
        fast exponential mean of their error (starting at the level the error rose to)."""

    @property
    def firing(self) -> dict[tuple[str, str | None], DriftAlert]:
        """The alerts firing now, by ``(kind, feature)``."""
        return self.alerts.firing

    def state(self) -> VersionState:
        """Everything this watch knows, as plain data, for a checkpoint."""
        return VersionState(
            model=self.model,
            info=self.info,
            config=self.config,
            retired=self.retired,
            metrics=rolling_state(self.metrics),
            windows=self.windows.state(),
            categories=self.categories.state(),
            scored=self.scored,
            labelled=self.labelled,
            scored_ts=self.scored_ts,
            learned_ts=self.learned_ts,
            since_check=self._since_check,
            drift=dict(self.drift),
            quality=dict(self.quality),
            alerts=book_state(self.alerts),
            concept=concept_state(self.concept),
            concept_last=self._concept_last,
            last_detection=self.last_detection,
            error_level=self.error_level,
            first_sum=self._first_sum,
            early=self._early,
            early_sum=self._early_sum,
            early_n=self._early_n,
            predecessor=self.predecessor,
            recovered=self._recovered,
            after=self._after,
        )

    @classmethod
    def from_state(cls, state: VersionState) -> VersionWatch:
        """The watch ``state`` describes: built as new from its version and settings, then given
        the saved windows, detector, alerts and counts."""
        watch = cls(state.model, state.info, state.config)
        watch.retired = state.retired
        watch.metrics = restore_rolling(state.metrics)
        watch.windows = DriftWindows.from_state(state.windows)
        if state.categories is not None:
            watch.categories = CategoryWindows.from_state(state.categories)
            expected = list(state.info.reference.categories) if state.info.reference else []
            if watch.categories.names != expected:
                raise ValueError("a version's category windows do not match its categories")
        if watch.windows.names != windowed(state.info):
            raise ValueError("a version's drift windows do not match its features")
        watch.scored, watch.labelled = state.scored, state.labelled
        watch.scored_ts, watch.learned_ts = state.scored_ts, state.learned_ts
        watch._since_check = state.since_check
        watch.drift = dict(state.drift)
        watch.quality = dict(state.quality)
        watch.alerts = restore_book(state.alerts)
        watch.concept = restore_concept(state.concept)
        if watch.concept.name != state.config.detector:
            raise ValueError("a version's concept detector is not the configured one")
        watch._concept_last = state.concept_last
        watch.last_detection = state.last_detection
        watch.error_level = state.error_level
        watch._first_sum = state.first_sum
        watch._early, watch._early_sum, watch._early_n = state.early, state.early_sum, state.early_n
        watch.predecessor = state.predecessor
        watch._recovered = state.recovered
        watch._after = state.after
        return watch

    # ---- data and prediction drift (no labels needed) --------------------------------------

    def observe(self, event: Scored) -> list[DriftAlert]:
        self.scored += 1
        self.scored_ts = max(self.scored_ts, event.ts)
        watched = event.prediction if self.info.task == "regression" else event.score
        if isinstance(watched, _NUMBERS) and not isinstance(watched, bool):
            self.windows.add(event.features, float(watched))
        else:
            self.windows.add(event.features, None)
        if self.categories.names:
            self.categories.add(event.features)
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
        found = self._reference_set(reference).compare(tested) if tested else {}
        for name in self.categories.names:
            if self.categories.count(name) >= window:
                seen = self.categories.values(name)
                evidence = category_drift(name, reference.categories[name], seen)
                if evidence is not None:
                    found[name] = evidence
        alerts.extend(self._check_quality(reference, ts))
        if not found:
            return alerts
        score = found.pop(SCORE, None)
        self.drift.update(found)
        ranking = self._ranking()
        for name in [*windows.names, *self.categories.names]:
            evidence = self.drift.get(name)
            if evidence is None:
                continue
            count = windows.count(name) if name in windows.names else self.categories.count(name)
            alert = self._drift_alert("data_drift", name, evidence, count, ts)
            if alert is not None:
                alerts.append(self._with_ranking(alert, ranking))
        if score is not None:
            evidence = self.drift[SCORE] = dataclasses.replace(score, feature="prediction")
            alert = self._drift_alert("prediction_drift", None, evidence, scores.size, ts)
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

    def _drift_alert(
        self, kind: AlertKind, feature: str | None, evidence: FeatureDrift, samples: int, ts: int
    ) -> DriftAlert | None:
        threshold = self.config.psi_threshold
        gate = self.alerts.gate(kind, feature, threshold, min_samples=self.config.drift_window)
        subject = f"feature {feature}" if feature else "the prediction distribution"
        severity: Severity = "critical" if evidence.psi > 2 * threshold else "warning"

        def why() -> Evidence:  # written only when the gate fires or resolves
            return Evidence(
                detector=f"psi+{evidence.test}",
                statistic=evidence.psi,
                threshold=threshold,
                window=samples,
                severity=severity,
                message=f"{subject} drifted: {self._drift_words(evidence, threshold)}, over the "
                f"last {samples} events",
            )

        statistic = self._drift_statistic(evidence)
        return self.alerts.judge(
            gate, kind, feature, statistic, samples=samples, ts=ts, evidence=why
        )

    def _check_quality(self, reference: ReferenceProfile, ts: int) -> list[DriftAlert]:
        """Each feature's missing, out-of-range and unseen shares against training's, through
        one ``data_quality`` gate per feature, once its window is full."""
        window = self.config.drift_window
        found: list[FeatureQuality | None] = []
        for name in self.windows.names:
            flags = self.windows.missing(name)
            if flags.size >= window:
                values = self.windows.values(name)
                ref_missing = reference.missing.get(name, 0.0)
                profile = reference.features.get(name)
                found.append(numeric_quality(name, values, flags, profile, ref_missing))
        for name in self.categories.names:
            if self.categories.count(name) >= window:
                seen = self.categories.values(name)
                found.append(category_quality(name, seen, reference.categories[name]))
        alerts = []
        threshold = self.config.quality_threshold
        for quality in found:
            if quality is None:
                continue
            self.quality[quality.feature] = quality
            check, excess = quality.worst()
            gate = self.alerts.gate("data_quality", quality.feature, threshold, min_samples=window)
            alert = self.alerts.judge(
                gate,
                "data_quality",
                quality.feature,
                excess,
                samples=quality.events,
                ts=ts,
                evidence=partial(_quality_evidence, quality, check, excess, threshold),
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _drift_words(self, evidence: FeatureDrift, threshold: float) -> str:
        """What the tests found, in words: the PSI, the test and the effect; for a category, the
        distance and the categories whose share moved most (from → to)."""
        test = "KS" if evidence.test == "ks" else "chi-square"
        said = (
            f"PSI {evidence.psi:.3f} > {threshold}, {test} {evidence.ks:.3g} "
            f"(p={evidence.p_value:.2g} < {self.alpha:.2g})"
        )
        if evidence.distance is None:
            return f"{said}, mean shift {evidence.mean_shift:.2f} sd"
        moved = ", ".join(f"{name} {a:.0%} → {b:.0%}" for name, a, b in evidence.moved)
        return (
            f"{said}, Jensen-Shannon distance {evidence.distance:.3f}, effect "
            f"{evidence.mean_shift:.2f}; shares moved most: {moved}"
        )

    def _with_ranking(self, alert: DriftAlert, ranking: list[str]) -> DriftAlert:
        if alert.state != "firing" or alert.feature not in ranking:
            return alert
        rank = ranking.index(alert.feature) + 1
        message = f"{alert.message}; rank {rank} of {len(ranking)} drifting: {', '.join(ranking)}"
        return self.alerts.amend(("data_drift", alert.feature), message)

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
        fired: Retrain | None = None
        error = event_error(self.info.task, joined.label, joined.prediction)
        detection = self._early_change(self.concept.update(error, joined.ts), error, joined.ts)
        concept = self._concept_alert(detection, now)
        supersedes = False
        if len(concept) == 2:  # a later change: the earlier alert resolved, a new one fired
            alerts.append(concept.pop(0))
            supersedes = True
        if concept:
            alerts.append(concept[0])
            if concept[0].state == "firing" and detection is not None:
                fired = Retrain(concept[0], detection.since_ts, supersedes)
        performance = self._check_performance(now)
        alerts.extend(performance)
        breach = (
            next((a for a in performance if a.state == "firing"), None) if performance else None
        )
        if fired is None and breach is not None:
            # Train after the last detected change if there was one, else on the whole window.
            since = self.last_detection.since_ts if self.last_detection else None
            fired = Retrain(breach, since)
        alerts.extend(self._against_predecessor(now))
        return alerts, fired

    def _early_change(self, detection: Detection | None, error: float, ts: int) -> Detection | None:
        """The detection to act on now. One found before ``concept_min_labels`` is held, not
        dropped (by then the detector has forgotten the level before it): when the labels are in,
        it fires if the error since has stayed nearer the raised level than the old one."""
        self._track(error, ts)
        config = self.config
        if detection is not None and self.labelled < config.concept_min_labels:
            self._early, self._early_sum, self._early_n = detection, 0.0, 0
            return None
        early = self._early
        if early is None:
            return detection
        self._early_sum += error
        self._early_n += 1
        if self.labelled < config.concept_min_labels or detection is not None:
            if detection is not None:
                self._early = None
            return detection
        self._early = None
        since = self._early_sum / max(1, self._early_n)
        return early if since > (early.before + early.after) / 2 else None

    def _track(self, error: float, ts: int) -> None:
        alpha = 2.0 / (self.first_labels + 1)
        level = self.error_level
        self.error_level = error if level is None else level + alpha * (error - level)
        if self.labelled <= self.first_labels:
            self._first_sum += error
        last = self.last_detection
        if last is None or self._recovered or ts <= last.ts_ms:
            # Only events later than the detection say whether the error came back down: late
            # labels of events from before it are the old level, and the slow level above lags
            # below the midpoint for hundreds of labels after a sudden rise. Either read as
            # recovered, and a detector firing twice during one rise raised two alerts.
            return
        n, mean = self._after
        n, mean = n + 1, mean + 2.0 / (RECOVERY_LABELS + 1) * (error - mean)
        self._after = (n, mean)
        self._recovered = n >= RECOVERY_LABELS and mean < (last.before + last.after) / 2

    def _against_predecessor(self, now: int) -> list[DriftAlert]:
        """A performance alert when, after its first labels, this version does clearly worse
        than the one it replaced (no threshold needs configuring for this)."""
        predecessor, level = self.predecessor or (None, None)
        if predecessor is None or level is None or self.labelled < self.first_labels:
            return []
        if self.labelled % PERFORMANCE_EVERY and self.labelled != self.first_labels:
            return []
        mine = (
            self._first_sum / self.first_labels
            if self.labelled == self.first_labels
            else float(self.error_level or 0.0)
        )
        worse = mine > WORSE_RATIO * level and (
            self.info.task == "regression" or mine - level >= WORSE_POINTS
        )
        gate = self.alerts.gate(*PREDECESSOR, 0.5, min_samples=self.first_labels, cooldown_ms=0)
        what = "error rate" if self.info.task == "classification" else "mean absolute error"
        evidence = Evidence(
            detector="predecessor",
            statistic=mine,
            threshold=level,
            window=self.labelled,
            severity="critical",
            message=(
                f"v{self.info.version}'s {what} is {mine:.3g} over its labels so far, "
                f"v{predecessor}'s was {level:.3g}: more than {WORSE_RATIO:g} times worse since it "
                "began to serve (the trainer's rollback guard judges it too)"
            ),
        )
        alert = self.alerts.judge(
            gate,
            *PREDECESSOR,
            1.0 if worse else 0.0,
            samples=self.labelled,
            ts=now,
            evidence=evidence,
        )
        return [] if alert is None else [alert]

    def _concept_alert(self, detection: Detection | None, now: int) -> list[DriftAlert]:
        """The concept detector through the alert gate: its statistic is 1 from a detection
        until the cooldown has passed without another, then 0 (so the alert resolves).

        A detection while the alert fires is a later change when the error level had come
        back nearer the level before the first change than the level it rose to (the first was
        a blip; a detector firing again during one rise is not a later change): the first alert
        resolves and a new one fires, with its own retrain request."""
        config = self.config
        if detection is None:
            gate = self.alerts.gates.get(CONCEPT)
            if gate is None or not gate.firing:
                return []  # the common case: nothing detected, and nothing firing to resolve
        else:
            gate = self.alerts.gate(
                *CONCEPT, 0.5, min_samples=config.concept_min_labels, cooldown_ms=0
            )
        evidence: Evidence | None = None
        previous = self.last_detection
        if detection is not None and self.labelled >= config.concept_min_labels:
            self._concept_last = now
            self.last_detection = detection
            recovered, self._recovered = self._recovered, False
            self._after = (0, detection.after)
            evidence = Evidence(
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
            )
            if (
                CONCEPT in self.alerts.firing
                and previous is not None
                and recovered
                and detection.since_ts > previous.ts_ms
                and detection.before < (previous.before + previous.after) / 2
            ):
                resolved = self.alerts.resolve(CONCEPT, now, why="a later change followed")
                return [resolved, self.alerts.fire(*CONCEPT, now, evidence)]
        recent = self._concept_last is not None and now - self._concept_last < config.cooldown_ms
        value = 1.0 if evidence is not None or recent else 0.0
        alert = self.alerts.judge(
            gate, *CONCEPT, value, samples=self.labelled, ts=now, evidence=evidence
        )
        return [] if alert is None else [alert]

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
            gate = self.alerts.gate(
                "performance",
                metric,
                threshold,
                min_samples=self.config.metrics_window,
                direction=direction,
            )
            why = Evidence(
                detector=f"rolling-{metric}",
                statistic=value,
                threshold=threshold,
                window=self.metrics.count,
                severity="critical",
                message=(
                    f"rolling {metric} {value:.4g} is {direction} its threshold {threshold} over "
                    f"the last {self.metrics.count} labelled events"
                ),
            )
            alert = self.alerts.judge(
                gate,
                "performance",
                metric,
                value,
                samples=self.metrics.count,
                ts=ts,
                evidence=why,
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def retire(self, ts: int, successor: int) -> list[DriftAlert]:
        """This version is no longer served: resolve its open alerts, raise no new ones."""
        self.retired = True
        return self.alerts.retire(ts, successor)

    def summary(self) -> VersionStatus:
        """Metrics, drift and open alerts, for `driftline status` and the metrics endpoint."""
        floor = self.config.psi_threshold
        top = sorted(
            (d for n, d in self.drift.items() if n != SCORE),
            key=lambda d: (self._drift_statistic(d) > floor, d.psi),
            reverse=True,
        )
        score = self.drift.get(SCORE)
        return VersionStatus(
            version=self.info.version,
            retired=self.retired,
            scored=self.scored,
            labelled=self.labelled,
            metrics=self.metrics.values(),
            metrics_time_window=self.metrics.time_values(),
            window=self.metrics.count,
            drift=[
                FeatureDriftStatus(
                    feature=d.feature,
                    psi=float(d.psi),
                    ks=float(d.ks),
                    p_value=float(d.p_value),
                    mean_shift=float(d.mean_shift),
                    drifting=self._drift_statistic(d) > floor,
                )
                for d in top[:5]
            ],
            prediction_drift=(
                None
                if score is None
                else PredictionDriftStatus(psi=float(score.psi), ks=float(score.ks))
            ),
            quality=self._quality_status(),
            firing=[f"{kind}:{feature}" if feature else kind for kind, feature in self.firing],
        )

    def _quality_status(self) -> list[FeatureQualityStatus]:
        threshold = self.config.quality_threshold
        found = []
        for quality in self.quality.values():
            check, excess = quality.worst()
            found.append(
                FeatureQualityStatus(
                    feature=quality.feature,
                    missing=quality.missing,
                    missing_reference=quality.missing_reference,
                    out_of_range=quality.out_of_range,
                    unseen=quality.unseen,
                    unseen_reference=quality.unseen_reference,
                    worst=check,
                    excess=excess,
                    problem=excess > threshold,
                    message=quality.describe(),
                )
            )
        return sorted(found, key=lambda q: q.excess, reverse=True)


class VersionState(msgspec.Struct, frozen=True, kw_only=True):
    """A :class:`VersionWatch` as plain data (what a checkpoint saves of one version)."""

    model: str
    info: VersionInfo
    config: MonitorConfig
    retired: bool
    metrics: RollingState
    windows: WindowsState
    categories: CategoryWindowsState | None = None
    scored: int
    labelled: int
    scored_ts: int
    learned_ts: int
    since_check: int
    drift: dict[str, FeatureDrift]
    quality: dict[str, FeatureQuality] = {}
    alerts: BookState
    concept: ConceptState
    concept_last: int | None
    last_detection: Detection | None
    error_level: float | None
    first_sum: float
    early: Detection | None
    early_sum: float
    early_n: int
    predecessor: tuple[int, float] | None
    recovered: bool
    after: tuple[int, float] = (0, 0.0)


def _quality_evidence(
    quality: FeatureQuality, check: str, excess: float, threshold: float
) -> Evidence:
    """A ``data_quality`` alert's evidence, written when its gate fires or resolves."""
    stopped = check == "missing" and quality.missing >= 1.0
    return Evidence(
        detector=f"quality:{check}",
        statistic=excess,
        threshold=threshold,
        window=quality.events,
        severity="critical" if stopped or excess > 2 * threshold else "warning",
        message=f"feature {quality.feature}: {quality.describe()}",
    )


def _in_unit_interval(profile: DistributionProfile) -> bool:
    return (
        bool(profile.quantiles) and min(profile.quantiles) >= 0.0 and max(profile.quantiles) <= 1.0
    )
