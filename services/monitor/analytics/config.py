"""What the monitor's analytics are told: its windows, thresholds and budget, and each version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.core.kinds import DetectorName, Task
from shared.stats.profile import ReferenceProfile


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
    quality_threshold: float = 0.1
    """A feature's data-quality alert fires when its missing share, or its share of values out of
    the training range or of categories training never had, is this much above training's."""
    false_alarms_per_million: float = 1.0
    """Budget of data/prediction-drift false alarms per million events on a stationary stream;
    sets the KS test's significance level (:meth:`ks_alpha`)."""
    detector: DetectorName = "adwin"
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
